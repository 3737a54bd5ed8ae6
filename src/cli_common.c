#include "cli.h"
#include "common.h"
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

int flag_value(int argc, char **argv, int *i, const char **value) {
    if (argv[*i][0] != '-') return attn_error("unexpected argument '%s' (flags start with --)", argv[*i]);
    if (*i + 1 >= argc) return attn_error("%s needs a value", argv[*i]);
    *value = argv[++*i];
    return 0;
}

int parse_int_flag(const char *flag, const char *value, long lo, long hi, long *out) {
    char *end;
    errno = 0;
    long v = strtol(value, &end, 10);
    if (errno || end == value || *end) return attn_error("bad value for %s: '%s' is not an integer", flag, value);
    if (v < lo || v > hi) return attn_error("bad value for %s: %ld is outside [%ld, %ld]", flag, v, lo, hi);
    *out = v;
    return 0;
}

int parse_float_flag(const char *flag, const char *value, double lo, double hi, double *out) {
    char *end;
    errno = 0;
    double v = strtod(value, &end);
    if (errno || end == value || *end || !isfinite(v)) return attn_error("bad value for %s: '%s' is not a number", flag, value);
    if (v < lo || v > hi) return attn_error("bad value for %s: %g is outside [%g, %g]", flag, v, lo, hi);
    *out = v;
    return 0;
}

int cmd_version(int argc, char **argv) {
    (void)argc; (void)argv;
    printf("attn %s\n", ATTN_VERSION);
    return 0;
}
