// The encoder-decoder Transformer of DESIGN.md section 1: configuration,
// parameters in one buffer, activations allocated once, forward and backward
// over a padded batch.
#ifndef ATTN_MODEL_H
#define ATTN_MODEL_H
#include <stddef.h>
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

typedef struct Activations Activations;  // defined in model.c

typedef struct {
    ModelConfig config;
    ModelParams params;      // slices of param_memory
    ModelParams grads;       // slices of grad_memory, same layout
    float *param_memory;     // all parameters, contiguous
    float *grad_memory;
    long n_params;           // floats in param_memory (tied tensors counted once)
    int max_B, max_S, max_T; // activation capacity
    Activations *acts;
    float *logits;           // (B, T, Vt) of the last forward
    float loss;              // mean label-smoothed loss of the last forward
    long n_target_tokens;    // non-pad targets of the last forward
} Model;

// Fills a config with the defaults (a small post-LN ReLU model).
void model_config_default(ModelConfig *cfg);
// Checks a config for consistency; on error returns -1 with the reason.
int model_config_validate(const ModelConfig *cfg);

// Allocates parameters and gradients (zeroed) and activations for batches up
// to (max_B, max_S, max_T). Returns -1 on an invalid config.
int model_create(Model *m, const ModelConfig *cfg, int max_B, int max_S, int max_T);
void model_free(Model *m);
// Initialization as nn.Transformer (xavier_uniform on matrices, LayerNorm 1/0,
// zero biases), embeddings N(0, 1) scaled as the reference does.
void model_init_weights(Model *m, uint64_t seed);

// Forward over a batch: logits and, when b->tgt_out is given, the loss
// (label smoothing `smoothing`). `train` enables dropout drawn from `rng`.
// Returns the loss (0 when no targets). Allocates nothing.
float model_forward(Model *m, const Batch *b, float smoothing, int train, Rng *rng);
// Backward of the last forward: accumulates into m->grads (call
// model_zero_grad first). Gradient of the mean loss.
void model_backward(Model *m, const Batch *b);
void model_zero_grad(Model *m);

// Named tensors in checkpoint order; views into the params (or grads) buffer.
// Returns the count; `views` may be NULL to ask for the count only.
int model_tensors(const Model *m, int grads, TensorView *views, int max_views);

// Sinusoidal position table value pe[pos, i] (DESIGN.md section 1).
float sinusoid(int pos, int i, int d_model);

#endif
