// Subcommands of the attn binary. Each returns 0 on success; on failure it
// returns non-zero after attn_error() recorded the message, which main prints.
// Each lives in its own src/cli_<name>.c and parses its own flags.
#ifndef ATTN_CLI_H
#define ATTN_CLI_H

typedef int (*CommandFn)(int argc, char **argv);  // argv[0] is the subcommand name

typedef struct {
    const char *name;
    CommandFn run;
    const char *summary;
} Command;

// Flag parsing helpers shared by the subcommands: each converts the value of
// `flag` and fails with "bad value for --flag: ..." on garbage or range errors.
int parse_int_flag(const char *flag, const char *value, long lo, long hi, long *out);
int parse_float_flag(const char *flag, const char *value, double lo, double hi, double *out);
// Returns the value after argv[*i] (advancing *i), or fails if it is missing.
int flag_value(int argc, char **argv, int *i, const char **value);

int cmd_version(int argc, char **argv);
int cmd_train(int argc, char **argv);    // cli_train.c
int cmd_average(int argc, char **argv);  // cli_average.c
int cmd_info(int argc, char **argv);     // cli_info.c
int cmd_tokenizer(int argc, char **argv);  // cli_tokenizer.c
int cmd_bleu(int argc, char **argv);   // cli_bleu.c
int cmd_chrf(int argc, char **argv);   // cli_bleu.c
int cmd_translate(int argc, char **argv);  // cli_translate.c
int cmd_score(int argc, char **argv);      // cli_score.c
int cmd_eval(int argc, char **argv);       // cli_eval.c
int cmd_prepare(int argc, char **argv);  // cli_prepare.c
int cmd_tune(int argc, char **argv);     // cli_tune.c
int cmd_gradcheck(int argc, char **argv);  // cli_gradcheck.c
int cmd_bench(int argc, char **argv);      // cli_bench.c

#endif
