// Checkpoints: model-file and state-file round trips (plain, tied, shared),
// clear one-line errors for corrupt, truncated, wrong-version and foreign
// files, and the run-directory pairing that survives a crash between writes.
#include "checkpoint.h"
#include "common.h"
#include "safetensors.h"
#include "test.h"
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[256];

static const char *path_in(const char *name) {
    static char buf[32][512];  // a ring: callers keep up to 32 paths at once
    static int next = 0;
    char *p = buf[next++ % 32];
    snprintf(p, 512, "%s/%s", dir, name);
    return p;
}

static int one_line(const char *msg) { return strchr(msg, '\n') == NULL; }

static void make_tokenizers(Tokenizer **src, Tokenizer **tgt) {
    const char *src_lines[] = {"abc", "bcd", "hello"};
    const char *tgt_lines[] = {"x y", "y z w"};
    if (tokenizer_learn(src, TOKENIZER_CHAR, src_lines, 3, NULL) != 0 ||
        tokenizer_learn(tgt, TOKENIZER_WORD, tgt_lines, 2, NULL) != 0) {
        printf("FAIL tokenizers: %s\n", attn_last_error());
        exit(1);
    }
}

static void tiny_config(ModelConfig *mc, const Tokenizer *src, const Tokenizer *tgt, int tie, int share) {
    model_config_default(mc);
    mc->src_vocab = tokenizer_vocab_size(src);
    mc->tgt_vocab = share ? mc->src_vocab : tokenizer_vocab_size(tgt);
    mc->d_model = 8;
    mc->n_heads = 2;
    mc->d_ff = 16;
    mc->n_enc_layers = 1;
    mc->n_dec_layers = 2;
    mc->max_len = 16;
    mc->tie_generator = tie;
    mc->share_embeddings = share;
}

// ----------------------------------------------------------------------------
// Model files

static void test_model_round_trip(int tie, int share) {
    Tokenizer *src, *tgt;
    make_tokenizers(&src, &tgt);
    const Tokenizer *tgt_used = share ? src : tgt;
    ModelConfig mc;
    tiny_config(&mc, src, tgt, tie, share);
    Model a, b;
    if (model_create(&a, &mc, 2, 4, 4) != 0) { printf("FAIL model_create: %s\n", attn_last_error()); exit(1); }
    model_init_weights(&a, 7);
    const char *path = path_in("model.safetensors");
    int rc = checkpoint_save_model(path, &a, src, tgt_used, "d_model = 8\n", 42, "42-abc");
    CHECK(rc == 0, "save model (tie %d share %d)%s%s", tie, share, rc ? ": " : "", rc ? attn_last_error() : "");
    Tokenizer *src2 = NULL, *tgt2 = NULL;
    rc = checkpoint_load_model(path, &b, 3, 0, 0, &src2, &tgt2);
    CHECK(rc == 0, "load model (tie %d share %d)%s%s", tie, share, rc ? ": " : "", rc ? attn_last_error() : "");
    if (rc != 0) exit(1);
    CHECK(b.n_params == a.n_params && memcmp(a.param_memory, b.param_memory, sizeof(float) * a.n_params) == 0,
          "weights identical after the round trip (%ld params)", a.n_params);
    CHECK(memcmp(&a.config, &b.config, sizeof a.config) == 0, "config identical after the round trip");
    CHECK(b.max_B == 3 && b.max_S == mc.max_len && b.max_T == mc.max_len, "capacity from the arguments / max_len");
    char *s1, *s2;
    tokenizer_to_string(tgt_used, &s1);
    tokenizer_to_string(tgt2, &s2);
    CHECK(strcmp(s1, s2) == 0 && tgt2 != src2, "target tokenizer restored (a separate object)");
    free(s1); free(s2);
    CheckpointInfo info;
    rc = checkpoint_read_info(path, &info);
    CHECK(rc == 0 && info.step == 42 && !strcmp(info.tag, "42-abc") && info.train_config &&
          !strcmp(info.train_config, "d_model = 8\n") && info.n_params == a.n_params,
          "info: step, tag, train config, parameter count");
    if (rc == 0) checkpoint_info_free(&info);
    SafeTensors st;
    st_load(path, &st);
    const char *tied = st_meta(&st, "tied");
    const char *want = share ? (tie ? "tgt_embed.weight=src_embed.weight,generator.weight=src_embed.weight"
                                    : "tgt_embed.weight=src_embed.weight")
                             : (tie ? "generator.weight=tgt_embed.weight" : "");
    CHECK(tied && !strcmp(tied, want), "tie record '%s'", tied ? tied : "(none)");
    CHECK(st_find(&st, "generator.weight") == NULL || !tie, "a tied generator is stored once");
    st_free(&st);
    // Loading into an existing model of another shape fails cleanly.
    Model c;
    ModelConfig other = mc;
    other.d_ff = 32;
    model_create(&c, &other, 1, 4, 4);
    rc = checkpoint_load_weights(path, &c, NULL);
    CHECK(rc != 0 && strstr(attn_last_error(), "differs in d_ff") && strstr(attn_last_error(), path),
          "architecture mismatch: %s", attn_last_error());
    model_free(&c);
    model_free(&a); model_free(&b);
    tokenizer_free(src); tokenizer_free(tgt); tokenizer_free(src2); tokenizer_free(tgt2);
}

static void save_tiny(const char *path) {
    Tokenizer *src, *tgt;
    make_tokenizers(&src, &tgt);
    ModelConfig mc;
    tiny_config(&mc, src, tgt, 0, 0);
    Model m;
    model_create(&m, &mc, 1, 4, 4);
    model_init_weights(&m, 3);
    checkpoint_save_model(path, &m, src, tgt, NULL, 1, NULL);
    model_free(&m);
    tokenizer_free(src); tokenizer_free(tgt);
}

static void expect_load_error(const char *path, const char *needle, const char *what) {
    Model m;
    int rc = checkpoint_load_model(path, &m, 1, 0, 0, NULL, NULL);
    const char *msg = attn_last_error();
    CHECK(rc != 0 && strstr(msg, path) && strstr(msg, needle) && one_line(msg), "%s -> \"%s\"", what,
          rc ? msg : "(loaded)");
    if (rc == 0) model_free(&m);
}

static void rewrite_meta(const char *from, const char *to, const char *key, const char *value) {
    SafeTensors st;
    st_load(from, &st);
    const char *keys[32], *values[32];
    int n = 0;
    for (int i = 0; i < st.n_meta && n < 32; i++) {
        if (!strcmp(st.meta_keys[i], key) && !value) continue;
        keys[n] = st.meta_keys[i];
        values[n++] = !strcmp(st.meta_keys[i], key) ? value : st.meta_values[i];
    }
    st_save(to, st.tensors, st.n_tensors, keys, values, n);
    st_free(&st);
}

static void test_bad_files(void) {
    const char *good = path_in("good.safetensors");
    save_tiny(good);
    char *data;
    size_t len;
    read_file(good, &data, &len);

    const char *flipped = path_in("flipped.safetensors");
    data[len - 5] ^= 0x10;  // a bit inside the last tensor
    write_file_atomic(flipped, data, len);
    data[len - 5] ^= 0x10;
    expect_load_error(flipped, "corrupt file: tensor data hash", "flipped bit in the data");

    const char *truncated = path_in("truncated.safetensors");
    write_file_atomic(truncated, data, len / 2);
    expect_load_error(truncated, "truncated", "truncated file");

    const char *tiny = path_in("tiny.safetensors");
    write_file_atomic(tiny, data, 5);
    expect_load_error(tiny, "truncated", "5-byte file");

    const char *garbage = path_in("garbage.safetensors");
    write_file_atomic(garbage, "this is not a checkpoint at all, just some text\n", 48);
    expect_load_error(garbage, "safetensors", "text file");

    const char *newer = path_in("newer.safetensors");
    rewrite_meta(good, newer, "format_version", "2");
    expect_load_error(newer, "format version 2, this attn reads version 1 (written by a newer attn)", "newer format version");

    const char *foreign = path_in("foreign.safetensors");
    rewrite_meta(good, foreign, "format", NULL);
    expect_load_error(foreign, "not an attn file", "safetensors without attn metadata");

    const char *state_as_model = path_in("state.safetensors");
    rewrite_meta(good, state_as_model, "format", CHECKPOINT_STATE_FORMAT);
    expect_load_error(state_as_model, "is an 'attn-train-state' file, expected 'attn-checkpoint'", "state file given as a model");

    const char *bad_config = path_in("badconfig.safetensors");
    rewrite_meta(good, bad_config, "model_config", "d_model = 8\n");
    expect_load_error(bad_config, "model_config lacks", "incomplete model config");

    expect_load_error(path_in("missing.safetensors"), "No such file", "missing file");
    expect_load_error(dir, "directory", "a directory");

    // A failed save leaves the existing file as it was.
    char *before;
    size_t before_len;
    read_file(good, &before, &before_len);
    Tokenizer *src, *tgt;
    make_tokenizers(&src, &tgt);
    ModelConfig mc;
    tiny_config(&mc, src, tgt, 0, 0);
    Model m;
    model_create(&m, &mc, 1, 4, 4);
    int rc = checkpoint_save_model(path_in("no/such/dir/x.safetensors"), &m, src, tgt, NULL, 1, NULL);
    CHECK(rc != 0 && strstr(attn_last_error(), "no/such/dir/x.safetensors"), "save into a missing directory: %s", attn_last_error());
    char *after;
    size_t after_len;
    read_file(good, &after, &after_len);
    CHECK(after_len == before_len && memcmp(before, after, len) == 0, "other checkpoints untouched");
    free(before); free(after); free(data);
    model_free(&m);
    tokenizer_free(src); tokenizer_free(tgt);
}

// ----------------------------------------------------------------------------
// Training state

static void fill_state(TrainState *s, Optimizer *o, float *ema, long n, long step, const char *tag) {
    memset(s, 0, sizeof *s);
    s->step = step;
    snprintf(s->tag, sizeof s->tag, "%s", tag);
    rng_seed(&s->rng, 99);
    rng_next(&s->rng);
    s->cursor.epoch = 3;
    s->cursor.position = 17;
    s->batches_drawn = 1234;
    s->best_metric = 0.1 + 1e-17;
    s->has_best = 1;
    s->best_step = 700;
    s->bad_evals = 2;
    s->elapsed_seconds = 12.5;
    s->tokens_seen = 99999;
    s->metrics_bytes = 4321;
    for (long i = 0; i < n; i++) { o->m[i] = (float)i * 0.5f; o->v[i] = (float)i * 0.25f; ema[i] = -(float)i; }
    o->step = step;
}

static void test_state_round_trip(void) {
    enum { N = 37 };
    Optimizer a, b;
    optimizer_init(&a, OPT_ADAMW, N, 0.9f, 0.98f, 1e-9f, 0.0f);
    optimizer_init(&b, OPT_ADAMW, N, 0.9f, 0.98f, 1e-9f, 0.0f);
    float ema_a[N], ema_b[N];
    TrainState s, t;
    fill_state(&s, &a, ema_a, N, 800, "800-feed");
    const char *path = path_in("x.state.safetensors");
    CHECK(checkpoint_save_state(path, &s, &a, ema_a) == 0, "save state");
    int rc = checkpoint_load_state(path, &t, &b, ema_b);
    CHECK(rc == 0, "load state%s%s", rc ? ": " : "", rc ? attn_last_error() : "");
    CHECK(t.diagnostics == NULL, "no diagnostics text saved, none loaded");
    CHECK(memcmp(&s, &t, sizeof s) == 0, "every state field restored exactly (RNG, cursor, best metric bits)");
    CHECK(memcmp(a.m, b.m, sizeof(float) * N) == 0 && memcmp(a.v, b.v, sizeof(float) * N) == 0 && b.step == 800,
          "optimizer moments and step restored");
    CHECK(memcmp(ema_a, ema_b, sizeof ema_a) == 0, "ema restored");
    Optimizer c;
    optimizer_init(&c, OPT_ADAMW, N + 1, 0.9f, 0.98f, 1e-9f, 0.0f);
    rc = checkpoint_load_state(path, &t, &c, NULL);
    CHECK(rc != 0 && strstr(attn_last_error(), "holds 37 values but the model has 38"), "size mismatch: %s", attn_last_error());
    optimizer_free(&c);
    optimizer_init(&c, OPT_ADAM, N, 0.9f, 0.98f, 1e-9f, 0.0f);
    rc = checkpoint_load_state(path, &t, &c, NULL);
    CHECK(rc != 0 && strstr(attn_last_error(), "optimizer 'adamw'"), "optimizer mismatch: %s", attn_last_error());
    optimizer_free(&c);
    s.diagnostics = "v1 0.5 2";
    checkpoint_save_state(path, &s, &a, NULL);
    rc = checkpoint_load_state(path, &t, &b, NULL);
    CHECK(rc == 0 && t.diagnostics && !strcmp(t.diagnostics, "v1 0.5 2"), "diagnostics text round trip");
    free(t.diagnostics);
    rc = checkpoint_load_state(path, &t, &b, ema_b);
    CHECK(rc != 0 && strstr(attn_last_error(), "'ema' is missing"), "ema asked for but absent: %s", attn_last_error());
    s.diagnostics = NULL;
    s.cursor.position = -3;  // the metadata is outside the data hash: its numbers are range-checked
    checkpoint_save_state(path, &s, &a, NULL);
    rc = checkpoint_load_state(path, &t, &b, NULL);
    CHECK(rc != 0 && strstr(attn_last_error(), "metadata is out of range"), "negative cursor refused: %s", attn_last_error());
    s.cursor.position = 17;
    snprintf(s.tag, sizeof s.tag, "799-feed");
    checkpoint_save_state(path, &s, &a, NULL);
    rc = checkpoint_load_state(path, &t, &b, NULL);
    CHECK(rc != 0 && strstr(attn_last_error(), "valid 'tag'"), "a tag of another step refused: %s", attn_last_error());
    optimizer_free(&a); optimizer_free(&b);
}

// ----------------------------------------------------------------------------
// Run directories: the (model, state) pair

static void save_pair(Model *m, Tokenizer *src, Tokenizer *tgt, Optimizer *o, long step, const char *tag) {
    TrainState s;
    float ema[1];
    fill_state(&s, o, ema, 0, step, tag);
    if (checkpoint_save_run(dir, m, src, tgt, NULL, &s, o, NULL) != 0) printf("FAIL save_run: %s\n", attn_last_error());
}

static int resume_step(char *model_path, char *state_path) {
    int found = checkpoint_find_resume(dir, model_path, state_path, 512);
    if (found != 1) return -1;
    CheckpointInfo info;
    if (checkpoint_read_info(model_path, &info) != 0) return -2;
    long step = info.step;
    checkpoint_info_free(&info);
    return (int)step;
}

static void copy_file(const char *from, const char *to) {
    char *data;
    size_t len;
    read_file(from, &data, &len);
    write_file_atomic(to, data, len);
    free(data);
}

static void test_run_pairs(void) {
    Tokenizer *src, *tgt;
    make_tokenizers(&src, &tgt);
    ModelConfig mc;
    tiny_config(&mc, src, tgt, 0, 0);
    Model m;
    model_create(&m, &mc, 1, 4, 4);
    model_init_weights(&m, 5);
    Optimizer o;
    optimizer_init(&o, OPT_ADAM, m.n_params, 0.9f, 0.98f, 1e-9f, 0.0f);
    char model_path[512], state_path[512];
    CHECK(checkpoint_find_resume(dir, model_path, state_path, sizeof model_path) == 0, "empty run directory: nothing to resume");

    save_pair(&m, src, tgt, &o, 100, "100-a");
    CHECK(resume_step(model_path, state_path) == 100, "after one save: resume at 100");
    save_pair(&m, src, tgt, &o, 200, "200-b");
    CHECK(resume_step(model_path, state_path) == 200 && strstr(model_path, "/last.safetensors") &&
          strstr(state_path, "/last.state.safetensors"), "after two saves: resume at 200 from last.*");

    // A crash after the new model file but before its state: the model says
    // 300, the state still says 200. Emulate save_run up to that point.
    copy_file(path_in("last.safetensors"), path_in("last.prev.safetensors"));
    copy_file(path_in("last.state.safetensors"), path_in("last.prev.state.safetensors"));
    checkpoint_save_model(path_in("last.safetensors"), &m, src, tgt, NULL, 300, "300-c");
    int step = resume_step(model_path, state_path);
    CHECK(step == 200 && strstr(model_path, "last.prev.safetensors"),
          "crash between the writes: resume from the older consistent pair (step %d, %s)", step, model_path);
    // The next save starts from that consistent pair and completes.
    save_pair(&m, src, tgt, &o, 300, "300-d");
    CHECK(resume_step(model_path, state_path) == 300 && strstr(model_path, "/last.safetensors"), "the next save repairs the pair");

    // The newest model file lost (deleted by hand): the previous pair.
    unlink(path_in("last.safetensors"));
    CHECK(resume_step(model_path, state_path) == 200, "model file gone: back to the previous pair");

    // Both pairs mismatched: an error, never a mixed resume.
    checkpoint_save_model(path_in("last.safetensors"), &m, src, tgt, NULL, 400, "400-e");
    checkpoint_save_model(path_in("last.prev.safetensors"), &m, src, tgt, NULL, 401, "401-f");
    int rc = checkpoint_find_resume(dir, model_path, state_path, sizeof model_path);
    CHECK(rc == -1 && strstr(attn_last_error(), "no consistent") && one_line(attn_last_error()),
          "no consistent pair is an error: %s", attn_last_error());
    optimizer_free(&o);
    model_free(&m);
    tokenizer_free(src); tokenizer_free(tgt);
}

static void remove_dir(void) {
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) printf("INFO could not remove %s\n", dir);
}

int main(void) {
    snprintf(dir, sizeof dir, "/tmp/attn_test_checkpoint.%ld", (long)getpid());
    mkdir(dir, 0755);
    test_model_round_trip(0, 0);
    test_model_round_trip(1, 0);
    test_model_round_trip(1, 1);
    test_model_round_trip(0, 1);
    test_bad_files();
    test_state_round_trip();
    remove_dir();
    mkdir(dir, 0755);
    test_run_pairs();
    remove_dir();
    TEST_EXIT();
}
