// attn info --model M: what a checkpoint holds (config, parameter counts
// per tensor family, tokenizers, training step and config), and a debugging
// aid, --dump-logits, that writes the logits of a batch for comparison with
// the PyTorch reference (tools/reference.py logits).
#include "checkpoint.h"
#include "cli.h"
#include "common.h"
#include "config.h"
#include "data.h"
#include "model.h"
#include "safetensors.h"
#include "tokenizer.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static void info_usage(void) {
    printf("usage: attn info --model M [--config]\n"
           "       attn info --model M --dump-logits PAIRS.tsv --out FILE.safetensors\n"
           "\n"
           "Prints a checkpoint's model config, parameter counts per tensor family,\n"
           "tokenizers and training step.\n"
           "\n"
           "  --model M            the checkpoint (.safetensors written by attn)\n"
           "  --config             also print the training config stored in it\n"
           "  --dump-logits TSV    encode the src<TAB>tgt pairs of TSV as one padded batch and\n"
           "                       write src, tgt_in, tgt_out (ids as floats), logits and loss\n"
           "                       (no smoothing, no dropout) to --out: the input of\n"
           "                       tools/reference.py logits\n");
}

// ----------------------------------------------------------------------------
// Parameter counts per family

// The family of a tensor name: what a reader wants counted together.
static const char *tensor_family(const char *name, const ModelConfig *c) {
    int enc = strstr(name, "transformer.encoder.layers.") == name;
    int dec = strstr(name, "transformer.decoder.layers.") == name;
    if (!strncmp(name, "src_embed", 9)) return c->share_embeddings ? "shared embedding" : "source embedding";
    if (!strncmp(name, "tgt_embed", 9)) return "target embedding";
    if (!strncmp(name, "generator", 9)) return "generator";
    if (strstr(name, "transformer.encoder.norm") == name) return "encoder final norm";
    if (strstr(name, "transformer.decoder.norm") == name) return "decoder final norm";
    if (enc && strstr(name, ".self_attn.")) return "encoder self-attention";
    if (enc && strstr(name, ".linear")) return "encoder feed-forward";
    if (enc && strstr(name, ".norm")) return "encoder layer norms";
    if (dec && strstr(name, ".self_attn.")) return "decoder self-attention";
    if (dec && strstr(name, ".multihead_attn.")) return "decoder cross-attention";
    if (dec && strstr(name, ".linear")) return "decoder feed-forward";
    if (dec && strstr(name, ".norm")) return "decoder layer norms";
    return "other";
}

static void print_families(const Model *m) {
    static const char *const order[] = {
        "source embedding", "target embedding", "shared embedding", "encoder self-attention", "encoder feed-forward",
        "encoder layer norms", "encoder final norm", "decoder self-attention", "decoder cross-attention",
        "decoder feed-forward", "decoder layer norms", "decoder final norm", "generator", "other",
    };
    int n = model_tensors(m, 0, NULL, 0);
    TensorView *views = malloc_check(sizeof(TensorView) * (size_t)n);
    model_tensors(m, 0, views, n);
    printf("parameters: %ld (%.2f MB as float32), %d tensors\n", m->n_params, m->n_params * 4.0 / 1e6, n);
    for (size_t f = 0; f < sizeof order / sizeof order[0]; f++) {
        long count = 0;
        int tensors = 0;
        for (int i = 0; i < n; i++) {
            if (strcmp(tensor_family(views[i].name, &m->config), order[f]) != 0) continue;
            count += views[i].numel;
            tensors++;
        }
        if (tensors) printf("  %-24s %12ld  (%5.1f%%, %d tensors)\n", order[f], count, 100.0 * count / m->n_params, tensors);
    }
    free(views);
}

// Byte-fallback pieces (<0x00> .. <0xFF>) say nothing about a vocabulary.
static int is_byte_piece(const char *piece) {
    return strlen(piece) == 6 && !strncmp(piece, "<0x", 3) && piece[5] == '>';
}

static void print_tokenizer(const char *side, const Tokenizer *t) {
    int V = tokenizer_vocab_size(t), bytes = 0, shown = 0;
    for (int id = TOK_N_SPECIAL; id < V; id++) bytes += is_byte_piece(tokenizer_piece(t, id));
    printf("%s tokenizer: %s, %d pieces", side, tokenizer_type_name(tokenizer_type(t)), V);
    if (bytes) printf(" (%d byte pieces)", bytes);
    printf("; first pieces:");
    for (int id = TOK_N_SPECIAL; id < V && shown < 12; id++) {
        if (is_byte_piece(tokenizer_piece(t, id))) continue;
        printf(" %s", tokenizer_piece(t, id));
        shown++;
    }
    printf("%s\n", V - TOK_N_SPECIAL - bytes > shown ? " ..." : "");
}

static int print_info(const char *path, int show_config) {
    CheckpointInfo info;
    if (checkpoint_read_info(path, &info) != 0) return -1;
    Model m;
    if (model_create(&m, &info.model_config, 1, 1, 1) != 0) { checkpoint_info_free(&info); return -1; }
    const ModelConfig *c = &info.model_config;
    struct stat st;
    printf("file: %s (%lld bytes), step %ld\n", path, stat(path, &st) == 0 ? (long long)st.st_size : -1LL, info.step);
    printf("model: d_model %d, heads %d, d_ff %d, layers %d+%d, %s, %s, vocab %d/%d, positions %d\n", c->d_model,
           c->n_heads, c->d_ff, c->n_enc_layers, c->n_dec_layers, c->activation == ACT_GELU ? "gelu" : "relu",
           c->norm_first ? "pre-LN" : "post-LN", c->src_vocab, c->tgt_vocab, c->max_len);
    printf("ties: generator %s, embeddings %s\n", c->tie_generator ? "tied to the target embedding" : "untied",
           c->share_embeddings ? "shared by source and target" : "separate");
    printf("dropout (training): embedding %g, residual %g, attention %g, ffn %g\n", c->dropout_emb,
           c->dropout_residual, c->dropout_attn, c->dropout_ffn);
    print_families(&m);
    print_tokenizer("source", info.src_tok);
    print_tokenizer("target", info.tgt_tok);
    if (show_config) printf("\ntraining config:\n%s", info.train_config ? info.train_config : "(none stored)\n");
    model_free(&m);
    checkpoint_info_free(&info);
    return 0;
}

// ----------------------------------------------------------------------------
// --dump-logits

// Encodes the pairs into one padded batch (layout of src/batch.h).
// A pair longer than the model's positions (max_len, </s> included) is refused
// by line, before the forward could only say that the batch does not fit.
static int encode_batch(const ParallelText *pt, const Tokenizer *src_tok, const Tokenizer *tgt_tok, int max_len,
                        const char *path, Batch *b) {
    int B = pt->n, S = 1, T = 1;
    int **src = malloc_check(sizeof(int *) * (size_t)B), **tgt = malloc_check(sizeof(int *) * (size_t)B);
    int *ns = malloc_check(sizeof(int) * (size_t)B), *nt = malloc_check(sizeof(int) * (size_t)B);
    int rc = 0;
    for (int i = 0; i < B; i++) {
        int cap_s = (int)strlen(pt->src[i]) + 1, cap_t = (int)strlen(pt->tgt[i]) + 1;
        src[i] = malloc_check(sizeof(int) * (size_t)cap_s);
        tgt[i] = malloc_check(sizeof(int) * (size_t)cap_t);
        ns[i] = tokenizer_encode(src_tok, pt->src[i], src[i], cap_s, 0.0f, NULL);
        nt[i] = tokenizer_encode(tgt_tok, pt->tgt[i], tgt[i], cap_t, 0.0f, NULL);
        if (rc == 0 && (ns[i] < 0 || nt[i] < 0))
            rc = attn_error("%s:%d: cannot encode: %s", path, pt->line[i], attn_last_error());
        else if (rc == 0 && (ns[i] + 1 > max_len || nt[i] + 1 > max_len))
            rc = attn_error("%s:%d: %d source and %d target tokens with </s>: over the model's max_len %d", path,
                            pt->line[i], ns[i] + 1, nt[i] + 1, max_len);
        if (ns[i] + 1 > S) S = ns[i] + 1;
        if (nt[i] + 1 > T) T = nt[i] + 1;
    }
    if (rc == 0) {
        batch_alloc(b, B, S, T);
        b->B = B; b->S = S; b->T = T;
        for (int i = 0; i < B; i++) {
            for (int s = 0; s < S; s++) b->src[i * S + s] = s < ns[i] ? src[i][s] : s == ns[i] ? EOS_ID : PAD_ID;
            for (int t = 0; t < T; t++) {
                b->tgt_in[i * T + t] = t == 0 ? BOS_ID : t <= nt[i] ? tgt[i][t - 1] : PAD_ID;
                b->tgt_out[i * T + t] = t < nt[i] ? tgt[i][t] : t == nt[i] ? EOS_ID : PAD_ID;
            }
        }
    }
    for (int i = 0; i < B; i++) { free(src[i]); free(tgt[i]); }
    free(src); free(tgt); free(ns); free(nt);
    return rc;
}

static float *ids_as_floats(const int *ids, long n) {
    float *out = malloc_check(sizeof(float) * (size_t)n);
    for (long i = 0; i < n; i++) out[i] = (float)ids[i];
    return out;
}

static int dump_logits(const char *model_path, const char *pairs_path, const char *out_path) {
    ParallelText pt;
    memset(&pt, 0, sizeof pt);
    if (parallel_read_tsv(&pt, pairs_path) != 0) return -1;
    if (pt.n == 0) { parallel_free(&pt); return attn_error("%s: no pairs", pairs_path); }
    Model m;
    Tokenizer *src_tok, *tgt_tok;
    if (checkpoint_load_model(model_path, &m, pt.n, 0, 0, &src_tok, &tgt_tok) != 0) { parallel_free(&pt); return -1; }
    Batch b;
    int rc = encode_batch(&pt, src_tok, tgt_tok, m.config.max_len, pairs_path, &b);
    if (rc == 0) {
        float loss = model_forward(&m, &b, 0.0f, 0, NULL);
        if (loss != loss) rc = -1;  // NaN: the batch does not fit; the error is recorded
        long nS = (long)b.B * b.S, nT = (long)b.B * b.T;
        float *src = ids_as_floats(b.src, nS), *tin = ids_as_floats(b.tgt_in, nT), *tout = ids_as_floats(b.tgt_out, nT);
        StTensor t[5] = {
            {.name = "src", .ndim = 2, .shape = {b.B, b.S}, .numel = nS, .data = src},
            {.name = "tgt_in", .ndim = 2, .shape = {b.B, b.T}, .numel = nT, .data = tin},
            {.name = "tgt_out", .ndim = 2, .shape = {b.B, b.T}, .numel = nT, .data = tout},
            {.name = "logits", .ndim = 3, .shape = {b.B, b.T, m.config.tgt_vocab}, .numel = nT * m.config.tgt_vocab,
             .data = m.logits},
            {.name = "loss", .ndim = 1, .shape = {1}, .numel = 1, .data = &loss},
        };
        if (rc == 0) rc = st_save(out_path, t, 5, NULL, NULL, 0);
        if (rc == 0) printf("wrote %s: batch %d x %d -> %d, loss %.6f\n", out_path, b.B, b.S, b.T, loss);
        free(src); free(tin); free(tout);
        batch_free(&b);
    }
    model_free(&m);
    tokenizer_free(src_tok);
    tokenizer_free(tgt_tok);
    parallel_free(&pt);
    return rc;
}

int cmd_info(int argc, char **argv) {
    const char *model = NULL, *pairs = NULL, *out = NULL;
    int show_config = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) { info_usage(); return 0; }
        if (!strcmp(argv[i], "--model")) { if (flag_value(argc, argv, &i, &model)) return -1; continue; }
        if (!strcmp(argv[i], "--dump-logits")) { if (flag_value(argc, argv, &i, &pairs)) return -1; continue; }
        if (!strcmp(argv[i], "--out")) { if (flag_value(argc, argv, &i, &out)) return -1; continue; }
        if (!strcmp(argv[i], "--config")) { show_config = 1; continue; }
        return attn_error("info: unknown flag '%s' (attn info --help)", argv[i]);
    }
    if (!model) return attn_error("info: --model M is required (attn info --help)");
    if (pairs && (!out || !*out)) return attn_error("info: --dump-logits needs --out FILE");
    if (pairs && (same_file(out, model) || same_file(out, pairs)))
        return attn_error("info: --out %s is one of the inputs; give another path", out);
    if (pairs) return dump_logits(model, pairs, out);
    return print_info(model, show_config);
}
