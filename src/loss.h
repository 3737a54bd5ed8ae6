// Cross-entropy with label smoothing, fused with the softmax of the logits,
// exactly as torch's F.cross_entropy(logits, target, ignore_index=0,
// label_smoothing=e): a row whose target is <pad> (0) is ignored; for the
// others, with p = softmax(z) over V classes,
//     loss_row = (1 - e) * -log p[target] + (e / V) * sum_c -log p[c]
// (the smoothing mass e/V goes to every class, <pad> included), and the
// model's loss is the mean of loss_row over the non-pad rows.
#ifndef ATTN_LOSS_H
#define ATTN_LOSS_H

// losses (N) gets loss_row (0 for pad rows); logits (N, V); targets (N).
// probs (N, V), unless NULL, gets softmax(z) of the non-pad rows (pad rows
// are left alone), so that backward needs no second pass of exp().
// Returns the sum of the row losses (accumulated in double, in row order,
// so the result does not depend on the thread count). *n_valid counts the
// non-pad rows and *n_correct those whose argmax (first maximum) is the
// target; either pointer may be NULL.
double crossentropy_forward(float *losses, float *probs, const float *logits, const int *targets,
                            int N, int V, float smoothing, long *n_valid, long *n_correct);

// dlogits (N, V) = scale * (p - q) with p = softmax(z) as crossentropy_forward
// left it in probs, q = (1 - e) onehot(target) + e / V, and 0 on pad rows;
// scale = 1 / n_valid gives the gradient of the mean loss. Unlike the layer
// kernels this OVERWRITES dlogits (the loss is where the gradient starts);
// dlogits may equal probs (in place).
void crossentropy_backward(float *dlogits, const float *probs, const int *targets,
                           int N, int V, float smoothing, float scale);

// The low-memory pair the model uses: the forward keeps only the log-sum-exp
// of each row, lse (N) (0 on pad rows), instead of the (N, V) softmax, and
// the backward turns the logits into their gradient in place,
//     logits[n, :] <- scale * (exp(z - lse[n]) - q)   (0 on pad rows),
// so a training step needs one (N, V) buffer instead of two. The loss and
// counts are those of crossentropy_forward, bit for bit.
double crossentropy_forward_lse(float *losses, float *lse, const float *logits, const int *targets,
                                int N, int V, float smoothing, long *n_valid, long *n_correct);
void crossentropy_backward_inplace(float *logits, const float *lse, const int *targets,
                                   int N, int V, float smoothing, float scale);
// Both at once, one row at a time while it is in cache (the training
// forward's chunks of logits): the same losses, lse and counts, bit for bit,
// and the gradient from the row's exponentials kept in place, so each logit
// takes one exp instead of two (the gradient rounds as scale * (e^(z - max) /
// sum - q), within a few ulp of the two-pass form).
double crossentropy_forward_backward_inplace(float *losses, float *lse, float *logits, const int *targets,
                                             int N, int V, float smoothing, float scale, long *n_valid,
                                             long *n_correct);

// sum_c e^(z[c] - shift) over z (V) with expf_fast, in float vector lanes
// over chunks of 512 added in double (every sum of exponentials of the
// model, so that decoding's scores and the loss agree); the exponentials go
// to p (V) unless NULL (p may be z).
double sum_exp_shifted(float *p, const float *z, int V, float shift);

#endif
