// Adam and AdamW over one contiguous parameter buffer, with the moments in
// two buffers of the same layout (llm.c style): one loop updates the model.
// Arithmetic follows torch.optim.Adam/AdamW (PyTorch 1.13, single-tensor path)
// so that the update can be checked against it.
#ifndef ATTN_OPTIM_H
#define ATTN_OPTIM_H

typedef enum { OPT_ADAM = 0, OPT_ADAMW = 1 } OptimizerType;

typedef struct {
    OptimizerType type;
    float beta1, beta2, eps;
    float weight_decay;   // Adam: L2 added to the gradient; AdamW: decoupled decay
    long n;               // floats in the parameter buffer
    float *m;             // (n) first moment
    float *v;             // (n) second moment
    long step;            // updates done so far; the next update is step + 1
} Optimizer;

// Allocates zeroed moments for n parameters.
void optimizer_init(Optimizer *o, OptimizerType type, long n, float beta1, float beta2,
                    float eps, float weight_decay);
void optimizer_free(Optimizer *o);
// One update of params (n) from grads (n) at learning rate lr; increments step.
void optimizer_step(Optimizer *o, float *params, const float *grads, float lr);

const char *optimizer_name(OptimizerType t);
int optimizer_parse(const char *name, OptimizerType *out);

// Global L2 norm of a gradient buffer, summed in double over fixed chunks in a
// fixed order, so the result does not depend on the thread count.
double grad_global_norm(const float *grads, long n);
// sum_i x[i]^2 in double, in fixed chunks: the same bits on any thread count.
double sum_squares(const float *x, long n);
// grads *= s.
void grad_scale(float *grads, long n, float s);
// Clips to max_norm as torch.nn.utils.clip_grad_norm_ (scale by
// max_norm / (norm + 1e-6) when that is below 1). Returns the norm before
// clipping. max_norm <= 0 only measures.
double grad_clip(float *grads, long n, double max_norm);

// Gradient accumulation weighted by target tokens: k batches give the
// gradient of the mean loss over all their tokens, as one k-times larger
// batch would. When grads holds the mean-loss gradient of n_done tokens,
// call grad_accumulate_before, then the backward of a batch of n_next tokens
// (which adds its own mean-loss gradient), then grad_accumulate_after; grads
// then holds the mean-loss gradient of n_done + n_next tokens. Both do
// nothing when n_done is 0 (the first batch).
void grad_accumulate_before(float *grads, long n, long n_done, long n_next);
void grad_accumulate_after(float *grads, long n, long n_done, long n_next);

// Exponential moving average of weights: ema = decay * ema + (1 - decay) * params.
void ema_update(float *ema, const float *params, long n, float decay);

#endif
