// Finite-difference check of the model's backward pass (`attn gradcheck`).
//
// Each checked parameter value p gets the fourth-order central difference
//     fd = (8 (L(p+h) - L(p-h)) - (L(p+2h) - L(p-2h))) / (12 h)
// of the mean label-smoothed loss L (computed by the float32 model, summed in
// double), compared with the analytic gradient of model_backward. A tensor's
// error is max |fd - analytic| over its checked values divided by the largest
// |analytic| among them (floored at 1e-4), so float rounding in tiny
// gradients does not count as failure. Values whose perturbations flip the
// sign of any ReLU input (a kink, where the derivative jumps) are skipped and
// counted. Dropout runs with the same seed at every evaluation, so its masks
// are fixed and its backward is checked too.
#ifndef ATTN_GRADCHECK_H
#define ATTN_GRADCHECK_H
#include <stdint.h>
#include <stdio.h>
#include "model.h"

typedef struct {
    double eps;          // step h (default 1e-2)
    double tol;          // largest allowed error per tensor (default 1e-2)
    int samples;         // values checked per tensor, 0 = all (default 24)
    uint64_t seed;       // weights, batch, sampled values and dropout masks
    const char *only;    // run only the suite case with this name (NULL = all)
} GradcheckOptions;

typedef struct {
    int n_tensors, n_failed;
    long n_values, n_skipped;   // values checked, values skipped at ReLU kinks
    double worst;               // the largest tensor error
} GradcheckResult;

void gradcheck_default_options(GradcheckOptions *opt);

// Checks every parameter tensor of m on batch b (dropout on when the config
// has it, with fixed masks). Prints one line per tensor to out, prefixed with
// `label`. Adds to *res. Returns 0 (the verdict is in res->n_failed).
int gradcheck_model(Model *m, const Batch *b, float smoothing, const GradcheckOptions *opt,
                    const char *label, FILE *out, GradcheckResult *res);

// The standard suite: tiny random models covering post-LN and pre-LN, ReLU
// and GELU, untied / tied generator / shared embeddings, dropout, and a
// batch padded on both sides. Returns -1 (with a message) if any tensor
// fails or opt->only names no case.
int gradcheck_suite(const GradcheckOptions *opt, FILE *out, GradcheckResult *res);

#endif
