// attn gradcheck: finite-difference check of every layer's backward pass on
// tiny random models (see gradcheck.h for the method and the tolerance).
#include <stdio.h>
#include <string.h>
#include "cli.h"
#include "common.h"
#include "gradcheck.h"

static void gradcheck_usage(void) {
    printf("usage: attn gradcheck [flags]\n\n"
           "Checks model_backward against fourth-order central finite differences of\n"
           "the loss on tiny random models: post-LN and pre-LN, ReLU and GELU, untied,\n"
           "tied and shared embeddings, dropout, a batch padded on both sides. Prints\n"
           "one line per parameter tensor; exits non-zero if any is over tolerance.\n\n"
           "  --eps H       finite-difference step (default 1e-2)\n"
           "  --tol T       largest allowed error per tensor: max |fd - analytic| over\n"
           "                the checked values / max |analytic| (default 1e-2)\n"
           "  --samples N   values checked per tensor, 0 = all (default 24)\n"
           "  --seed S      weights, batch, sampled values, dropout masks (default 1)\n"
           "  --case NAME   only one case: postln-relu-untied, preln-gelu-tied,\n"
           "                postln-gelu-shared-drop, preln-relu-shared-drop\n");
}

int cmd_gradcheck(int argc, char **argv) {
    GradcheckOptions opt;
    gradcheck_default_options(&opt);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        double d;
        long n;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { gradcheck_usage(); return 0; }
        if (strcmp(a, "--eps") && strcmp(a, "--tol") && strcmp(a, "--samples") && strcmp(a, "--seed") && strcmp(a, "--case"))
            return attn_error("gradcheck: unknown flag '%s' (try attn gradcheck --help)", a);
        if (flag_value(argc, argv, &i, &v)) return -1;
        if (!strcmp(a, "--eps")) {
            if (parse_float_flag(a, v, 1e-6, 1.0, &d)) return -1;
            opt.eps = d;
        } else if (!strcmp(a, "--tol")) {
            if (parse_float_flag(a, v, 0.0, 1e6, &d)) return -1;
            opt.tol = d;
        } else if (!strcmp(a, "--samples")) {
            if (parse_int_flag(a, v, 0, 1000000000L, &n)) return -1;
            opt.samples = (int)n;
        } else if (!strcmp(a, "--seed")) {
            if (parse_int_flag(a, v, 0, 2147483647L, &n)) return -1;
            opt.seed = (uint64_t)n;
        } else {
            opt.only = v;   // --case
        }
    }
    GradcheckResult res;
    return gradcheck_suite(&opt, stdout, &res);
}
