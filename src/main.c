// attn: the command line. Dispatches to a subcommand and is the one place
// that prints errors ("attn: <message>") and chooses the exit status.
#include <stdio.h>
#include <string.h>
#include "cli.h"
#include "common.h"

static const Command commands[] = {
    // One line per subcommand; keep the order of DESIGN.md section 3.
    {"version", cmd_version, "print the version"},
    {"train", cmd_train, "train a model from a config into a run directory (resumes an existing one)"},
    {"average", cmd_average, "average the weights of checkpoints (the last N of a run)"},
    {"info", cmd_info, "a checkpoint's config, parameter counts and tokenizers"},
    {"translate", cmd_translate, "translate stdin to stdout, one line per line (greedy, beam, sampling, n-best)"},
    {"score", cmd_score, "per line of src<TAB>tgt on stdin, the target's negative log-likelihood in nats"},
    {"eval", cmd_eval, "decode a src<TAB>tgt file and print BLEU, chrF, WER/PER, accuracy, loss"},
    {"tokenizer", cmd_tokenizer, "learn a char/word/BPE tokenizer; encode and decode text (stdin)"},
    {"prepare", cmd_prepare, "clean parallel text and split it into train/valid/test TSVs"},
    {"bleu", cmd_bleu, "corpus BLEU of hypotheses (stdin) against --ref files, as sacreBLEU"},
    {"chrf", cmd_chrf, "corpus chrF of hypotheses (stdin) against --ref files, as sacreBLEU"},
    {"tune", cmd_tune, "hyperparameter search (grid, random, successive halving, ASHA) over attn train runs"},
    {"gradcheck", cmd_gradcheck, "finite-difference check of every layer's backward pass"},
    {"bench", cmd_bench, "training and decoding speed on a benchmark config (one JSON line)"},
};
static const int n_commands = sizeof commands / sizeof commands[0];

static void usage(FILE *out) {
    fprintf(out, "usage: attn <command> [flags]   (attn <command> --help for its flags)\n\ncommands:\n");
    for (int i = 0; i < n_commands; i++) fprintf(out, "  %-11s %s\n", commands[i].name, commands[i].summary);
}

int main(int argc, char **argv) {
    if (argc < 2) { usage(stderr); return 2; }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        if (stdout_flush() != 0) { fprintf(stderr, "attn: %s\n", attn_last_error()); return 1; }
        return 0;
    }
    for (int i = 0; i < n_commands; i++) {
        if (strcmp(argv[1], commands[i].name) != 0) continue;
        // stdout_flush turns output lost to a full disk or a closed pipe into an error.
        if (commands[i].run(argc - 1, argv + 1) != 0 || stdout_flush() != 0) {
            fprintf(stderr, "attn: %s\n", attn_last_error());
            return 1;
        }
        return 0;
    }
    fprintf(stderr, "attn: unknown command '%s' (try attn --help)\n", argv[1]);
    return 2;
}
