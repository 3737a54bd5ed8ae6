// Layer kernels of the Transformer, forward and backward side by side
// (llm.c style: outputs first, then inputs, then sizes).
//
// Conventions, shared by every kernel here:
// - Row-major float32; N is the number of rows (tokens, usually B*T).
// - Backward kernels ACCUMULATE (+=) into every gradient they write (dinp,
//   dweight, dbias), so that a tensor used twice (a residual stream, the
//   encoder memory read by every decoder layer, a tied weight) sums its
//   gradients naturally. Zero a gradient buffer before its first use.
//   The exception is dropout_backward, which works in place (see there).
// - Parallel loops (threads_for: one contiguous range per thread) run over
//   rows, or over column blocks for reductions over rows (dweight, dbias,
//   embedding tables), so no two threads ever add into the same float and
//   no value depends on the thread count (tests/test_kernels.c checks the
//   reductions on 1 and 2 threads).
// - These kernels are public for incremental (cached) decoding, which runs
//   them on one position at a time.
#ifndef ATTN_KERNELS_H
#define ATTN_KERNELS_H
#include <stdint.h>
#include "gemm.h"
#include "rng.h"

#define LAYERNORM_EPS 1e-5f

// ---------------------------------------------------------------------------
// exp(x) in plain float arithmetic that gcc vectorizes inside `omp simd`
// loops (libm's expf is a call per value). Cephes' expf scheme: x = k ln2 + r
// with |r| <= ln2 / 2 (ln2 split in two for an exact r), a degree-7
// polynomial for e^r, and 2^k put into the exponent bits. Relative error
// below 2e-7 (about 2 ulp) for x in [-87.3, 88]; x < -87.3 gives 0 (true
// value below 1.2e-38, far under what a softmax or loss can see), x > 88 is
// clamped to e^88; NaN stays NaN. Every caller feeds x <= 0 (z - max z).
static inline float expf_fast(float x) {
    float xc = x > 88.0f ? 88.0f : x;
    xc = xc < -87.3f ? -87.3f : xc;
    // k = round(x / ln2): adding 1.5 * 2^23 rounds to an integer in the low
    // mantissa bits (|k| < 2^22), read back without a float-to-int cast.
    union { float f; uint32_t u; } t = {xc * 1.44269504088896341f + 12582912.0f};
    float k = t.f - 12582912.0f;
    uint32_t ki = t.u - 0x4B400000u;   // k as a two's complement integer
    float r = xc - k * 0.693359375f;   // ln2 = 0.693359375 - 2.12194440e-4, the first part exact in k * it
    r = r + k * 2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    float er = p * r * r + r + 1.0f;
    union { uint32_t u; float f; } scale = {(ki + 127u) << 23};
    return x < -87.3f ? 0.0f : er * scale.f;
}

// ---------------------------------------------------------------------------
// Linear: out (N, OC) = inp (N, IC) @ weight^T + bias, weight (OC, IC) as in
// PyTorch, bias (OC) or NULL. Matrix products go through gemm().
void linear_forward(float *out, const float *inp, const float *weight, const float *bias,
                    int N, int IC, int OC);
// What linear_fused_forward does to each output value after the bias:
// optionally an activation, then optionally dropout.
enum { LINEAR_NO_ACT = 0, LINEAR_RELU = 1, LINEAR_GELU = 2 };
typedef struct {
    const float *bias;       // (OC) or NULL
    float *act;              // (N, OC) activation output; may be out itself
    int OC, act_fn;          // act_fn: LINEAR_*
    int drop;                // dropout on act (else act is the activation)
    float scale;             // 1 / (1 - p)
    uint32_t key_lo, key_hi, threshold;
} LinearEpilogue;
// Fills e: dropout with p and seed is that of dropout_forward_seeded(seed),
// on the flat index n * OC + o (p 0: none). act has OC floats per row, and
// so must the output (ldc = OC).
void linear_epilogue_init(LinearEpilogue *e, const float *bias, float *act, int OC, int act_fn, float p,
                          uint64_t seed);
// e as gemm's epilogue (gemm_epilogue, gemm_prepacked); e must outlive it.
GemmEpilogue linear_epilogue(const LinearEpilogue *e);
// out = inp @ weight^T + bias, then act = dropout(act_fn(out)) (act may be
// out), each output block finished while gemm still has it in cache: the
// same values as linear_forward, relu_forward / gelu_forward and
// dropout_forward_seeded one after the other, without their passes over
// memory.
void linear_fused_forward(float *out, const float *inp, const float *weight, int N, int IC,
                          const LinearEpilogue *e);
// dinp (N, IC) += dout @ weight; dweight (OC, IC) += dout^T @ inp;
// dbias (OC) += column sums of dout. dinp or dbias may be NULL (skipped).
void linear_backward(float *dinp, float *dweight, float *dbias,
                     const float *dout, const float *inp, const float *weight,
                     int N, int IC, int OC);

// ---------------------------------------------------------------------------
// LayerNorm over the last dimension C with eps 1e-5 (biased variance, as torch).
// out, inp (N, C); weight, bias (C); mean, rstd (N) are kept for backward.
void layernorm_forward(float *out, float *mean, float *rstd,
                       const float *inp, const float *weight, const float *bias, int N, int C);
void layernorm_backward(float *dinp, float *dweight, float *dbias,
                        const float *dout, const float *inp, const float *weight,
                        const float *mean, const float *rstd, int N, int C);
// Residual + LayerNorm fused: the input is a + b (N, C), summed in the loops
// and never stored (bit for bit residual_forward then layernorm_forward).
// The backward recomputes the sum; dinp is the gradient of the sum (which
// is that of a and of b).
void layernorm_residual_forward(float *out, float *mean, float *rstd, const float *a, const float *b,
                                const float *weight, const float *bias, int N, int C);
void layernorm_residual_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                                 const float *a, const float *b, const float *weight,
                                 const float *mean, const float *rstd, int N, int C);
// The output of layernorm_residual_forward again, bit for bit, from the
// mean and rstd it kept: a model need not store a LayerNorm output that the
// backward can rebuild.
void layernorm_residual_recompute(float *out, const float *a, const float *b, const float *weight,
                                  const float *bias, const float *mean, const float *rstd, int N, int C);

// ---------------------------------------------------------------------------
// Elementwise activations over n values. out may equal inp in forward.
// ReLU's derivative at exactly 0 is 0 (as torch's threshold_backward).
// The model runs the forwards inside the Linear's epilogue
// (linear_fused_forward); these separate passes are what it is tested
// against, and the gradient checks' layers.
void relu_forward(float *out, const float *inp, long n);
void relu_backward(float *dinp, const float *dout, const float *inp, long n);
// ReLU and the dropout after it, backward in place, from the stored output
// act = drop(relu(x)) alone: d (n) = act > 0 ? d / (1 - p) : 0. A unit
// with act > 0 had x > 0 and was kept; one with act == 0 gets no gradient
// either way (dropped, or x <= 0), so neither x nor the mask is needed.
// p = 0: plain ReLU backward in place.
void relu_dropout_backward(float *d, const float *act, long n, float p);
// GELU, the exact erf form: 0.5 x (1 + erf(x / sqrt 2)) (torch's default).
void gelu_forward(float *out, const float *inp, long n);
void gelu_backward(float *dinp, const float *dout, const float *inp, long n);

// ---------------------------------------------------------------------------
// Inverted dropout: out = inp * keep / (1 - p), keep ~ Bernoulli(1 - p).
// keep (n) is stored for backward (1 keep, 0 drop). out may equal inp.
// One 64-bit seed is drawn from `rng` per call; value i is kept by a hash of
// (seed, i) (16 bits against p * 65536, so p is rounded to a multiple of
// 1/65536), so the mask does not depend on the thread count.
// With p <= 0 or keep == NULL it is the identity (copies when out != inp).
void dropout_forward(float *out, uint8_t *keep, const float *inp, long n, float p, Rng *rng);

// Dropout without a stored mask: the mask is the one dropout_forward draws
// with `seed`, recomputed (cheaply: a hash per value) in the backward. With
// p <= 0 the identity.
void dropout_forward_seeded(float *out, const float *inp, long n, float p, uint64_t seed);
void dropout_backward_seeded(float *d, long n, float p, uint64_t seed);

// The mask's parts, for kernels that fuse dropout into their own loops (the
// attention) and must draw the same mask dropout_forward would: value i of a
// call with seed s is kept iff dropout_keep(s, s >> 32, i, dropout_threshold(p)).
// Two rounds of murmur3's finalizer over the index mixed with the seed: a
// few 32-bit multiplies that vectorize, where a sequential generator
// (xoshiro) has a serial dependency per draw.
static inline uint32_t dropout_threshold(float p) { return (uint32_t)(p * 65536.0f + 0.5f); }
static inline int dropout_keep(uint32_t key_lo, uint32_t key_hi, uint64_t i, uint32_t threshold) {
    uint32_t x = (uint32_t)i * 0x9E3779B9u + key_lo;
    x ^= (uint32_t)(i >> 32) * 0x85EBCA6Bu;
    x ^= x >> 16; x *= 0x85EBCA6Bu; x ^= x >> 13; x *= 0xC2B2AE35u; x ^= x >> 16;
    x += key_hi;
    x ^= x >> 16; x *= 0x85EBCA6Bu; x ^= x >> 13; x *= 0xC2B2AE35u; x ^= x >> 16;
    return (x >> 16) >= threshold;
}
// In place: d (n) holds the gradient of the output and becomes that of the
// input: d *= keep / (1 - p). No-op with p <= 0 or keep == NULL.
void dropout_backward(float *d, const uint8_t *keep, long n, float p);

// ---------------------------------------------------------------------------
// Residual add: out = a + b over n values (out may alias a or b). Its
// backward is two accumulations of dout, written inline by the callers.
void residual_forward(float *out, const float *a, const float *b, long n);
// y += x over n values (the accumulation every backward needs).
void add_inplace(float *y, const float *x, long n);

// ---------------------------------------------------------------------------
// Token embedding scaled by sqrt(C) plus the sinusoidal positions:
// out[b, t, :] = table[tokens[b, t], :] * sqrt(C) + pe[t, :]
// out (B, T, C); tokens (B, T); table (V, C); pe (>= T, C), see model.h sinusoid().
// `pos0` offsets the positions (pe row pos0 + t) for incremental decoding.
void embedding_forward(float *out, const int *tokens, const float *table, const float *pe,
                       int B, int T, int C, int pos0);
// dtable[tokens[b, t], :] += sqrt(C) * dout[b, t, :]. Every token gets its
// gradient, <pad> too (nn.Embedding without padding_idx); in a model its
// padded rows receive zero gradient anyway because masks cut them off.
void embedding_backward(float *dtable, const float *dout, const int *tokens, int B, int T, int C);

// ---------------------------------------------------------------------------
// Masked softmax of one attention score matrix (Tq, Tk), in place allowed.
// Key j is hidden from every query when key_pad[j] != 0 (key_pad (Tk) or
// NULL), and with `causal` query i sees only keys j <= i + (Tk - Tq) (the
// queries are the last Tq of the Tk positions; Tq == Tk is the usual square
// mask, Tq == 1 one decoding step). Hidden entries get probability 0. A row
// with no visible key becomes all zeros (PyTorch would give NaN; such a query
// has no defined output). Both softmax kernels are serial: attention.c runs
// them inside its parallel loop over (batch, head).
void masked_softmax_forward(float *probs, const float *scores, const uint8_t *key_pad,
                            int Tq, int Tk, int causal);
// The keys [0, visible_end) query i of a (Tq, Tk) attention may see before
// padding: Tk, or with `causal` i + (Tk - Tq) + 1 clipped to [0, Tk].
static inline int softmax_visible_end(int i, int Tq, int Tk, int causal) {
    int end = causal ? i + (Tk - Tq) + 1 : Tk;
    return end > Tk ? Tk : end < 0 ? 0 : end;
}
// One row of masked_softmax_forward: p (Tk) = softmax of s over the keys
// [0, visible_end) not marked in key_pad (Tk, or NULL), 0 elsewhere.
void softmax_row_masked(float *p, const float *s, const uint8_t *key_pad, int visible_end, int Tk);
// Softmax backward over rows (N, L): dinp += probs * (dprobs - sum(probs * dprobs)).
// Hidden entries have probability 0 and so get no gradient.
void softmax_backward(float *dinp, const float *dprobs, const float *probs, int N, int L);

#endif
