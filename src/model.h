// The encoder-decoder Transformer of DESIGN.md section 1: configuration,
// parameters in one buffer, activations allocated once, forward and backward
// over a padded batch.
#ifndef ATTN_MODEL_H
#define ATTN_MODEL_H
#include <stddef.h>
#include <stdint.h>
#include "attention.h"
#include "gemm.h"
#include "rng.h"

enum { PAD_ID = 0, UNK_ID = 1, BOS_ID = 2, EOS_ID = 3 };
enum { ACT_RELU = 0, ACT_GELU = 1 };

typedef struct {
    int src_vocab, tgt_vocab;
    int d_model, n_heads, d_ff;
    int n_enc_layers, n_dec_layers;
    int activation;            // ACT_RELU | ACT_GELU
    int norm_first;            // 0: post-LN (the paper), 1: pre-LN
    int tie_generator;         // generator.weight is tgt_embed.weight
    int share_embeddings;      // src_embed is tgt_embed (needs equal vocabs)
    int max_len;               // longest sequence (positions table size)
    float dropout_emb;         // after embedding + positions
    float dropout_residual;    // on each sublayer output before the residual add
    float dropout_attn;        // on attention probabilities
    float dropout_ffn;         // on the FFN activation
} ModelConfig;

// Parameters, stacked over layers (llm.c style). The same struct slices the
// gradient buffer. Shapes: C = d_model, F = d_ff, Le/Ld = encoder/decoder
// layers, Vs/Vt = vocabularies. Linear weights are (out, in) as in PyTorch.
typedef struct {
    float *src_embed;     // (Vs, C)
    float *tgt_embed;     // (Vt, C)   == src_embed when shared
    float *enc_qkv_w;     // (Le, 3C, C)  self_attn.in_proj_weight
    float *enc_qkv_b;     // (Le, 3C)
    float *enc_out_w;     // (Le, C, C)   self_attn.out_proj
    float *enc_out_b;     // (Le, C)
    float *enc_ln1_w;     // (Le, C)      norm1
    float *enc_ln1_b;     // (Le, C)
    float *enc_ff1_w;     // (Le, F, C)   linear1
    float *enc_ff1_b;     // (Le, F)
    float *enc_ff2_w;     // (Le, C, F)   linear2
    float *enc_ff2_b;     // (Le, C)
    float *enc_ln2_w;     // (Le, C)      norm2
    float *enc_ln2_b;     // (Le, C)
    float *enc_norm_w;    // (C)          transformer.encoder.norm
    float *enc_norm_b;    // (C)
    float *dec_qkv_w;     // (Ld, 3C, C)  self_attn.in_proj_weight
    float *dec_qkv_b;     // (Ld, 3C)
    float *dec_out_w;     // (Ld, C, C)
    float *dec_out_b;     // (Ld, C)
    float *dec_ln1_w;     // (Ld, C)      norm1
    float *dec_ln1_b;     // (Ld, C)
    float *dec_xqkv_w;    // (Ld, 3C, C)  multihead_attn.in_proj_weight: rows [0,C) act on
    float *dec_xqkv_b;    // (Ld, 3C)     the decoder state, rows [C,3C) on encoder memory
    float *dec_xout_w;    // (Ld, C, C)   multihead_attn.out_proj
    float *dec_xout_b;    // (Ld, C)
    float *dec_ln2_w;     // (Ld, C)      norm2
    float *dec_ln2_b;     // (Ld, C)
    float *dec_ff1_w;     // (Ld, F, C)
    float *dec_ff1_b;     // (Ld, F)
    float *dec_ff2_w;     // (Ld, C, F)
    float *dec_ff2_b;     // (Ld, C)
    float *dec_ln3_w;     // (Ld, C)      norm3
    float *dec_ln3_b;     // (Ld, C)
    float *dec_norm_w;    // (C)          transformer.decoder.norm
    float *dec_norm_b;    // (C)
    float *gen_w;         // (Vt, C)      == tgt_embed when tied
    float *gen_b;         // (Vt)
} ModelParams;

// One named tensor of the checkpoint, viewed in the parameter (or gradient)
// buffer. Tied tensors appear once, under the name of the tensor they tie to.
typedef struct {
    char name[96];        // PyTorch name, e.g. "transformer.encoder.layers.0.norm1.weight"
    int ndim;
    int shape[2];
    long numel;
    float *data;          // view into param_memory (or grad_memory)
    int layer;            // layer index, -1 for non-layer tensors
} TensorView;

// A padded batch. Source and target have their own padded lengths.
typedef struct {
    int B, S, T;          // sentences, padded source length, padded target length
    int *src;             // (B, S) source ids, PAD_ID after the end
    int *tgt_in;          // (B, T) <s> y1 .. yn, PAD_ID after
    int *tgt_out;         // (B, T) y1 .. yn </s>, PAD_ID after
} Batch;

// Saved activations of one encoder layer, all (B, S, ...) for the batch of
// the last forward (rows beyond it are unused capacity). Post-LN:
//   res1 = x + drop(self(x));   ln1 = norm1(res1)
//   res2 = ln1 + drop(ff(ln1)); ln2 = norm2(res2)    -> output ln2
// where the residual sums are not stored (res1, res2 NULL): the LayerNorm
// reads x + self.out directly and its backward recomputes the sum
// (kernels.h layernorm_residual_forward). Nor is ln1: every layer's ln1
// points at one shared buffer (Activations.ln_shared1), holding the last
// layer's after a forward, and the backward rebuilds it from x + self.out
// and the kept mean and rstd (bit for bit). The output ln2 is kept.
// Pre-LN (norm_first):
//   ln1 = norm1(x);   res1 = x + drop(self(ln1))
//   ln2 = norm2(res1); res2 = res1 + drop(ff(ln2))   -> output res2
// with ff(h) = linear2(drop(act(linear1(h)))). Dropouts run in place. Their
// masks are not stored: each dropout site keeps the seed it drew (*_seed) and
// the backward recomputes the mask from it (kernels.h dropout_forward_seeded);
// the *_keep pointers are always NULL, as are the attention's drop_keep and
// probs_drop (MhaActs.drop_seed holds its seed). The attention outputs
// (MhaActs.att, out_proj's input) of all sublayers are one buffer, holding
// the last sublayer's after a forward; the backward rebuilds each from probs
// and the values (MhaScratch.att, the same buffer).
// With ReLU, ff1 and act are one buffer (ReLU and dropout run in place over
// linear1's output): act > 0 exactly where linear1's output is > 0 and the
// unit was kept, which is all the backward needs (a dropped unit gets no
// gradient), and it saves a (B, S, F) tensor per layer.
typedef struct {
    float *ln1, *ln1_mean, *ln1_rstd;   // (B, S, C) (shared post-LN), (B, S), (B, S)
    MhaActs self;                       // self.out (B, S, C): after residual dropout
    uint8_t *self_keep;                 // NULL (masks are not stored)
    float *res1;                        // (B, S, C) pre-LN; NULL post-LN
    float *ln2, *ln2_mean, *ln2_rstd;   // (B, S, C), (B, S), (B, S)
    float *ff1;                         // (B, S, F) linear1 output; with ReLU the same
                                        // buffer as act (see below)
    float *act;                         // (B, S, F) activation, after FFN dropout
    uint8_t *act_keep;                  // NULL
    float *ff2;                         // (B, S, C) linear2 output, after residual dropout
    uint8_t *ff2_keep;                  // NULL
    float *res2;                        // (B, S, C) pre-LN; NULL post-LN
    uint64_t self_seed, act_seed, ff2_seed;  // dropout seeds of self.out, act, ff2 (0: no dropout)
} EncoderLayerActs;

// One decoder layer, all (B, T, ...). Post-LN (res1..3 not stored, NULL;
// ln1 and ln2 are the shared buffers ln_shared1 and ln_shared2, rebuilt by
// the backward, as in the encoder; ln3, the output, is kept):
//   res1 = x + drop(self(x));            ln1 = norm1(res1)
//   res2 = ln1 + drop(cross(ln1, mem));  ln2 = norm2(res2)
//   res3 = ln2 + drop(ff(ln2));          ln3 = norm3(res3)   -> output ln3
// Pre-LN:
//   ln1 = norm1(x);    res1 = x + drop(self(ln1))
//   ln2 = norm2(res1); res2 = res1 + drop(cross(ln2, mem))
//   ln3 = norm3(res2); res3 = res2 + drop(ff(ln3))           -> output res3
typedef struct {
    float *ln1, *ln1_mean, *ln1_rstd;   // (B, T, C), (B, T), (B, T)
    MhaActs self;                       // causal self-attention; probs (B, NH, T, T)
    uint8_t *self_keep;                 // NULL (masks are not stored)
    float *res1;                        // (B, T, C) pre-LN; NULL post-LN
    float *ln2, *ln2_mean, *ln2_rstd;
    MhaActs cross;                      // cross-attention; probs (B, NH, T, S), kv (B, S, 2C)
    uint8_t *cross_keep;                // NULL
    float *res2;                        // (B, T, C) pre-LN; NULL post-LN
    float *ln3, *ln3_mean, *ln3_rstd;
    float *ff1, *act;                   // (B, T, F); one buffer with ReLU (see the encoder)
    uint8_t *act_keep;                  // NULL
    float *ff2;                         // (B, T, C)
    uint8_t *ff2_keep;                  // NULL
    float *res3;                        // (B, T, C) pre-LN; NULL post-LN
    uint64_t self_seed, cross_seed, act_seed, ff2_seed;  // dropout seeds (0: no dropout)
} DecoderLayerActs;

// Everything the forward keeps, allocated once in model_create for
// (max_B, max_S, max_T), plus the backward's scratch. Readable by debugging
// tools after a forward; shapes are those of the last forward (B, S, T).
// The training forward chunks the generator and the loss (see Activations)
// when the batch has at least GEN_CHUNKED_MIN_LOGITS logits: smaller ones run
// in one pass, where the saving is small and the extra calls cost time.
enum { GEN_CHUNK_ROWS = 512, GEN_CHUNKED_MIN_LOGITS = 1 << 20 };
typedef struct Activations {
    int B, S, T;                        // the last forward's batch
    int train;                          // dropout was on in the last forward
    uint8_t *src_pad;                   // (B, S) 1 where src is <pad>
    uint8_t *tgt_pad;                   // (B, T) 1 where tgt_in is <pad>
    float *src_x;                       // (B, S, C) embedding * sqrt(C) + pe, after dropout
    uint8_t *src_x_keep;                // NULL (masks are not stored)
    EncoderLayerActs *enc;              // [n_enc_layers]
    float *memory, *memory_mean, *memory_rstd;    // (B, S, C) transformer.encoder.norm output
    float *tgt_x;                       // (B, T, C)
    uint8_t *tgt_x_keep;                // NULL
    uint64_t src_x_seed, tgt_x_seed;    // embedding dropout seeds (0: no dropout)
    DecoderLayerActs *dec;              // [n_dec_layers]
    float *dec_out, *dec_out_mean, *dec_out_rstd; // (B, T, C) transformer.decoder.norm output
    float *ln_shared1, *ln_shared2;     // post-LN: (B, max(S, T), C) and (B, T, C), the inner
                                        // LayerNorm outputs of every layer; NULL pre-LN
    float *token_loss;                  // (B, T) per-target loss (0 at pad); no smoothing -> NLL
    float *lse;                         // (B, T) log-sum-exp of each row of logits (0 at pad),
                                        // kept by a forward with targets for the backward
    float *probs;                       // (B, T, Vt) the same memory as m->logits: the softmax is
                                        // not stored, backward recomputes it from lse
    // Training forward (train with targets): the generator, the loss and
    // their backward run in chunks of GEN_CHUNK_ROWS rows, so the (B, T, Vt)
    // logits are never all in memory. The generator's gradient waits here
    // until model_backward adds it to m->grads; dtmp1 holds dec_out's.
    int generator_done;                 // the last forward did the above
    float *gen_dw, *gen_db;             // (Vt, C), (Vt): pending generator gradient
    // backward scratch
    float *dlogits;                     // (B, T, Vt) the logits' gradient, written over m->logits
    float *dstream;                     // (B, max(S, T), C) gradient of the residual stream
    float *dtmp1, *dtmp2;               // (B, max(S, T), C)
    float *dff1, *dact;                 // (B, max(S, T), F)
    float *dmemory;                     // (B, S, C) summed over the decoder layers
    MhaScratch mha;                     // sized for the largest attention
    void *memory_block;                 // the one allocation everything above points into
    size_t memory_bytes;
} Activations;

typedef struct {
    ModelConfig config;
    ModelParams params;      // slices of param_memory
    ModelParams grads;       // slices of grad_memory, same layout
    float *param_memory;     // all parameters, contiguous
    float *grad_memory;
    long n_params;           // floats in param_memory (tied tensors counted once)
    int max_B, max_S, max_T; // activation capacity
    Activations *acts;
    float *pos_table;        // (max_len, C) sinusoidal positions, sinusoid()
    float *logits;           // (B, T, Vt) of the last forward
    float loss;              // mean label-smoothed loss of the last forward
    long n_target_tokens;    // non-pad targets of the last forward
    long n_correct;          // of those, how many have the target as argmax
    float smoothing;         // label smoothing of the last forward (for backward)
    int has_targets;         // the last forward computed a loss
} Model;

// Fills a config with the defaults (a small post-LN ReLU model).
void model_config_default(ModelConfig *cfg);
// Checks a config for consistency; on error returns -1 with the reason.
int model_config_validate(const ModelConfig *cfg);

// Allocates parameters and gradients (zeroed) and activations for batches up
// to (max_B, max_S, max_T). Returns -1 on an invalid config.
int model_create(Model *m, const ModelConfig *cfg, int max_B, int max_S, int max_T);
void model_free(Model *m);
// Initialization as nn.Transformer: xavier_uniform on every matrix of the
// transformer, zero attention biases (in_proj, out_proj), LayerNorm 1/0, and
// nn.Linear's default U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for the FFN biases
// and the generator. Embeddings N(0, d_model^-0.5), so that embedding *
// sqrt(d_model) has unit variance (and a tied generator starts small).
// Deterministic for a seed, drawn tensor by tensor in model_tensors() order.
void model_init_weights(Model *m, uint64_t seed);

// Checks that a batch fits the model: sizes within (max_B, max_S, max_T),
// token ids within the vocabularies. Returns -1 with the reason otherwise.
int model_check_batch(const Model *m, const Batch *b);
// Forward over a batch: logits and, when b->tgt_out is given, the loss
// (label smoothing `smoothing`). `train` enables dropout drawn from `rng`
// (with rng NULL the forward runs as in eval mode).
// Returns the loss (0 when no targets or no non-pad target), or NAN after
// recording an error when model_check_batch fails. Allocates nothing.
// With train and targets (and at least GEN_CHUNKED_MIN_LOGITS logits),
// m->logits is not filled (the logits are computed
// chunk by chunk with the loss and its gradient, see Activations): callers
// that read the logits run with train 0.
float model_forward(Model *m, const Batch *b, float smoothing, int train, Rng *rng);
// Backward of the last forward: accumulates into m->grads (call
// model_zero_grad first). Gradient of the mean loss; does nothing when the
// last forward had no targets (or no non-pad target) or was rejected.
// Overwrites m->logits with the logits' gradient (acts->dlogits is that
// buffer): read the logits before calling it.
void model_backward(Model *m, const Batch *b);
void model_zero_grad(Model *m);

// Named tensors in checkpoint order; views into the params (or grads) buffer.
// Returns the count; `views` may be NULL to ask for the count only.
int model_tensors(const Model *m, int grads, TensorView *views, int max_views);

// Encoder only, eval mode (no dropout): fills m->acts->memory (B, S, C) and
// m->acts->src_pad (B, S) for src (B, S). Returns -1 when it does not fit.
int model_encode(Model *m, const int *src, int B, int S);

// ---------------------------------------------------------------------------
// Cached incremental decoding (eval mode), one position per step for B
// hypotheses in lockstep. Per decoder layer l the state caches the keys and
// values of the self-attention for positions [0, pos) and the projected
// encoder memory; a step computes position `pos` only. The logits equal
// those of model_forward on the same prefix (to float rounding).
typedef struct {
    int max_B, max_S, max_T;
    int B, S;                // hypotheses and source length since decode_begin
    // Keys are stored transposed, channel-major, so that one head's scores
    // over all positions are a vector loop over contiguous positions.
    float *self_kt;          // (Ld, max_B, C, max_T) keys of positions so far
    float *self_v;           // (Ld, max_B, max_T, C) values of positions so far
    float *cross_kt;         // (Ld, max_B, C, max_S) projected memory: keys
    float *cross_v;          // (Ld, max_B, max_S, C) projected memory: values
    uint8_t *mem_pad;        // (max_B, max_S) 1 where the source is <pad>
    float *logits;           // (max_B, Vt) of the last step
    // one step's scratch
    float *x;                // (max_B, C) the residual stream at position pos
    float *h;                // (max_B, C) LayerNorm output (pre-LN) / sublayer input
    float *qkv;              // (max_B, 3C)
    float *att;              // (max_B, C)
    float *sub;              // (max_B, C) sublayer output
    float *ff;               // (max_B, F)
    float *mean, *rstd;      // (max_B)
    float *probs;            // (max_B, NH, max(max_T, max_S)); after decode_step it holds
                             // the last decoder layer's cross-attention, (B, NH, S)
    float *reorder_tmp;      // (max_B, max(max_T, 2 max_S) * C): rows in motion, and
                             // decode_begin's projected memory before it is split
    uint8_t *reorder_pad;    // (max_B, max_S), then decode_reorder's masks (2 max_B)
    int *mem_class;          // (2 max_B) rows of one class have the same memory (so the
                             // same projected memory and padding): decode_reorder
                             // copies memory rows only across classes; second half scratch
    // The decoder's weights packed for gemm_prepacked (a step multiplies
    // only B rows through each, so repacking the weights at every step cost
    // as much as the product): per layer DECODE_PACKED_PER_LAYER matrices,
    // then the generator. Packed by the first decode_begin with B > 4 and
    // kept for later ones until decode_weights_changed or a change of gemm
    // path; batches of B <= 4 multiply the weights unpacked.
    GemmPackedB *packed;
    int n_packed;
    int packed_path;         // the gemm path of the packing; 0: none, or stale
    int use_packed;          // this batch multiplies through `packed` (B > 4)
} DecodeState;
enum { DECODE_PACKED_PER_LAYER = 6 };

int decode_state_create(DecodeState *st, const Model *m, int max_B, int max_S, int max_T);
void decode_state_free(DecodeState *st);
// Starts decoding B hypotheses over memory (B, S, C) with mem_pad (B, S),
// e.g. m->acts->memory and m->acts->src_pad after model_encode (repeat rows
// first for a beam). Projects the memory for every layer and, when B > 4
// and the weights are not packed yet, packs the decoder's weights.
int decode_begin(const Model *m, DecodeState *st, const float *memory, const uint8_t *mem_pad,
                 int B, int S);
// The model's weights changed since the state packed them (an optimizer
// step, loaded weights): the next decode_begin packs them again. Without
// it decode_step would keep multiplying by the old weights.
void decode_weights_changed(DecodeState *st);
// Feeds tokens (B) at position pos (0 for <s>; positions 0..pos-1 must have
// been fed) and leaves the next-token logits in st->logits (B, Vt).
int decode_step(const Model *m, DecodeState *st, const int *tokens, int pos);
// Beam bookkeeping: hypothesis i continues old hypothesis from[i] (i < B):
// copies its cached positions [0, n_pos) and its memory rows.
void decode_reorder(DecodeState *st, const Model *m, const int *from, int n_pos);
// The copying under decode_reorder, for callers that know which rows change
// (decode.c knows sentences): row i < B becomes old row from[i] — its cached
// positions [0, n_pos) where self_changed[i], its projected memory and
// padding where mem_changed[i]. Rows not marked are not touched; memory
// classes follow the rows. Does not change st->B.
void decode_move_rows(DecodeState *st, const Model *m, const int *from, const uint8_t *self_changed,
                      const uint8_t *mem_changed, int B, int n_pos);

// Sinusoidal position table value pe[pos, i] (DESIGN.md section 1).
float sinusoid(int pos, int i, int d_model);

#endif
