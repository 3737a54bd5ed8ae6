// Config parsing, errors (one line, naming the file and line), printing and
// the round trip text -> config -> text.
#include "common.h"
#include "config.h"
#include "test.h"
#include <stdlib.h>
#include <string.h>

static int one_line(const char *msg) { return strchr(msg, '\n') == NULL; }

static void test_defaults(void) {
    TrainConfig cfg;
    config_default(&cfg);
    CHECK(config_validate(&cfg) == 0, "defaults validate");
    CHECK(cfg.beta1 == 0.9 && cfg.beta2 == 0.98 && cfg.eps == 1e-9, "paper Adam defaults");
    CHECK(cfg.schedule == SCHED_NOAM && cfg.optimizer == OPT_ADAM, "paper schedule and optimizer");
}

static void test_parse(void) {
    TrainConfig cfg;
    config_default(&cfg);
    const char *text =
        "# a comment line\n"
        "\n"
        "  d_model = 64   # trailing comment\n"
        "n_heads=2\n"
        "activation = gelu\n"
        "train = \"data/my file #1.tsv\"\n"
        "lr = 3e-4\r\n"
        "schedule = cosine\n"
        "dropout_attn = 0.25\n"
        "norm_first = true\n"
        "seed = 18446744073709551615\n";
    int rc = config_parse(&cfg, text, "x.conf");
    CHECK(rc == 0, "parse a config with comments, quotes, CRLF (%s)", rc ? attn_last_error() : "ok");
    CHECK(cfg.model.d_model == 64 && cfg.model.n_heads == 2, "model keys set");
    CHECK(cfg.model.activation == ACT_GELU && cfg.model.norm_first == 1, "enum and bool keys");
    CHECK(strcmp(cfg.train, "data/my file #1.tsv") == 0, "quoted value keeps spaces and '#': [%s]", cfg.train);
    CHECK(cfg.lr == 3e-4 && cfg.schedule == SCHED_COSINE, "float and schedule keys");
    CHECK(cfg.model.dropout_attn == 0.25f, "dropout per site");
    CHECK(cfg.seed == UINT64_MAX, "64-bit seed");
}

static void expect_error(const char *text, const char *needle, const char *what) {
    TrainConfig cfg;
    config_default(&cfg);
    int rc = config_parse(&cfg, text, "bad.conf");
    const char *msg = attn_last_error();
    CHECK(rc != 0 && strstr(msg, needle) && one_line(msg), "%s -> \"%s\"", what, rc ? msg : "(accepted)");
}

static void test_errors(void) {
    expect_error("d_model = 64\nd_modle = 32\n", "bad.conf:2: unknown config key 'd_modle'", "unknown key names file and line");
    expect_error("d_model = sixty\n", "bad.conf:1: bad value for d_model: 'sixty' is not an integer", "non-integer");
    expect_error("d_model = 0\n", "outside", "out of range");
    expect_error("lr = 1e-3x\n", "not a number", "trailing garbage in a number");
    expect_error("lr = nan\n", "not a number", "nan rejected");
    expect_error("optimizer = sgd\n", "'sgd' is not one of adam|adamw", "unknown choice");
    expect_error("norm_first = maybe\n", "not 0/1", "bad bool");
    expect_error("just some words\n", "bad.conf:1: expected 'key = value'", "line without '='");
    expect_error("lr = 1\nlr = 2\n", "bad.conf:2: key 'lr' is set twice", "repeated key");
    expect_error("train = \"unterminated\n", "unterminated", "unterminated quote");
    expect_error("seed = -1\n", "non-negative", "negative seed");
    expect_error("src_vocab = 10\n", "unknown config key 'src_vocab'", "vocab sizes come from the tokenizers");
    TrainConfig cfg;
    config_default(&cfg);
    CHECK(config_load(&cfg, "/nonexistent/x.conf") != 0 && strstr(attn_last_error(), "/nonexistent/x.conf"),
          "missing file named: %s", attn_last_error());
}

static void test_overrides(void) {
    TrainConfig cfg;
    config_default(&cfg);
    CHECK(config_set(&cfg, "max-steps", "250") == 0 && cfg.max_steps == 250, "--max-steps reads as max_steps");
    CHECK(config_set(&cfg, "warmup_steps", "10") == 0 && cfg.warmup_steps == 10, "underscore form");
    CHECK(config_set(&cfg, "nope", "1") != 0 && strstr(attn_last_error(), "unknown config key 'nope'"), "unknown override");
    char buf[64];
    CHECK(config_get(&cfg, "max_steps", buf, sizeof buf) == 0 && strcmp(buf, "250") == 0, "config_get");
}

static void test_validate(void) {
    TrainConfig cfg;
    config_default(&cfg);
    cfg.model.n_heads = 3;
    CHECK(config_validate(&cfg) != 0 && strstr(attn_last_error(), "multiple of n_heads"), "heads must divide d_model: %s", attn_last_error());
    config_default(&cfg);
    cfg.max_steps = 0;
    CHECK(config_validate(&cfg) != 0 && strstr(attn_last_error(), "budget"), "a budget is required");
    config_default(&cfg);
    strcpy(cfg.task, "tsv");
    CHECK(config_validate(&cfg) != 0 && strstr(attn_last_error(), "train = FILE"), "tsv needs a train file");
    config_default(&cfg);
    cfg.model.share_embeddings = 1;
    CHECK(config_validate(&cfg) != 0 && strstr(attn_last_error(), "joint_vocab"), "sharing needs a joint vocab");
}

static void test_round_trip(void) {
    TrainConfig a, b;
    config_default(&a);
    a.lr = 0.1;                    // not exact in binary: printed shortest, read back equal
    a.model.dropout_ffn = 0.3f;
    a.ema_decay = 0.9999;
    strcpy(a.valid, "");
    strcpy(a.train, "path with spaces.tsv");
    char *text = config_to_string(&a);
    config_default(&b);
    b.lr = 5;  // must be overwritten
    int rc = config_parse(&b, text, "dump");
    CHECK(rc == 0, "the dump parses (%s)", rc ? attn_last_error() : "ok");
    CHECK(config_first_difference(&a, &b, 0) == NULL, "dump -> parse gives the same config (first difference: %s)",
          config_first_difference(&a, &b, 0) ? config_first_difference(&a, &b, 0) : "none");
    CHECK(strstr(text, "lr                       = 0.1 ") != NULL, "0.1 printed as 0.1");
    free(text);
    b.max_steps = 7;
    CHECK(config_first_difference(&a, &b, 1) == NULL, "run-control keys ignored when asked");
    CHECK(config_first_difference(&a, &b, 0) && strcmp(config_first_difference(&a, &b, 0), "max_steps") == 0, "max_steps differs");
    b.model.d_ff = 8;
    CHECK(config_first_difference(&a, &b, 1) && strcmp(config_first_difference(&a, &b, 1), "d_ff") == 0, "model key differs");
}

static void test_model_config(void) {
    TrainConfig cfg;
    config_default(&cfg);
    cfg.model.src_vocab = 37;
    cfg.model.tgt_vocab = 41;
    cfg.model.dropout_emb = 0.05f;
    char *text = model_config_to_string(&cfg.model);
    ModelConfig back;
    int rc = model_config_from_string(&back, text, "m.safetensors");
    CHECK(rc == 0 && memcmp(&back, &cfg.model, sizeof back) == 0, "model config round trip");
    CHECK(strstr(text, "src_vocab = 37\n") != NULL, "model config text holds the vocab sizes");
    free(text);
    rc = model_config_from_string(&back, "d_model = 4\n", "m.safetensors");
    CHECK(rc != 0 && strstr(attn_last_error(), "m.safetensors: model_config lacks 'src_vocab'"), "missing model key: %s", attn_last_error());
    rc = model_config_from_string(&back, "wings = 2\n", "m.safetensors");
    CHECK(rc != 0 && strstr(attn_last_error(), "unknown key 'wings'"), "unknown model key: %s", attn_last_error());
}

int main(void) {
    test_defaults();
    test_parse();
    test_errors();
    test_overrides();
    test_validate();
    test_round_trip();
    test_model_config();
    TEST_EXIT();
}
