// Training diagnostics (see diagnostics.h for how the training loop uses them).
#include "diagnostics.h"
#include "common.h"
#include "json.h"
#include "optim.h"
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// ----------------------------------------------------------------------------
// configuration

void diag_config_default(DiagConfig *cfg) {
    cfg->nan_action = DIAG_STOP;
    cfg->spike_action = DIAG_WARN;
    // A loss or gradient norm 6 standard deviations above the last 100 steps:
    // rare enough in a healthy run that a warning means something.
    cfg->spike_zscore = 6.0;
    cfg->spike_window = 100;
    cfg->spike_min_count = 20;
    cfg->lr_scale_factor = 0.5;
    cfg->max_consecutive_skips = 10;
    // Three orders of magnitude below the median layer, for 50 steps in a row.
    cfg->vanish_ratio = 1e-3;
    cfg->vanish_patience = 50;
    cfg->overfit_patience = 3;
    cfg->overfit_min_rise = 0.01;
    cfg->stats_every = 0;
}

static const char *const action_names[] = {"ok", "warn", "scale_lr", "skip", "stop"};

const char *diag_action_name(DiagAction a) {
    return (a >= DIAG_OK && a <= DIAG_STOP) ? action_names[a] : "?";
}

int diag_action_parse(const char *name, DiagAction *out) {
    if (!strcmp(name, "off")) { *out = DIAG_OK; return 0; }
    for (int a = DIAG_OK; a <= DIAG_STOP; a++)
        if (!strcmp(name, action_names[a])) { *out = (DiagAction)a; return 0; }
    return attn_error("unknown diagnostics action '%s' (expected off, warn, scale_lr, skip or stop)", name);
}

// ----------------------------------------------------------------------------
// sliding-window z-score

void zscore_init(ZScore *z, int window) {
    memset(z, 0, sizeof *z);
    z->window = window < 2 ? 2 : window > DIAG_WINDOW_MAX ? DIAG_WINDOW_MAX : window;
}

double zscore_push(ZScore *z, double x, int min_count) {
    double score = NAN;
    z->mean = z->std = NAN;
    if (z->count >= min_count && z->count >= 2) {
        double sum = 0, sumsq = 0;
        for (int i = 0; i < z->count; i++) sum += z->values[i];
        double mean = sum / z->count;
        for (int i = 0; i < z->count; i++) sumsq += (z->values[i] - mean) * (z->values[i] - mean);
        double std = sqrt(sumsq / z->count);
        // A perfectly flat window (std 0) would make any change infinite; a
        // floor relative to the mean keeps the score meaningful.
        double floor = 1e-6 * fabs(mean) + 1e-12;
        score = (x - mean) / (std > floor ? std : floor);
        z->mean = mean;
        z->std = std;
        z->n = z->count;
    }
    // Non-finite values never enter the window: they are reported on their own.
    if (isfinite(x)) {
        z->values[z->next] = x;
        z->next = (z->next + 1) % z->window;
        if (z->count < z->window) z->count++;
    }
    return score;
}

// ----------------------------------------------------------------------------
// layer groups

void diag_group_name(const char *tensor_name, char *out, size_t out_size) {
    const char *s = tensor_name;
    if (!strncmp(s, "transformer.", 12)) s += 12;
    const char *layers = strstr(s, "layers.");
    size_t len;
    if (layers) {  // keep "...layers.N"
        const char *p = layers + 7;
        while (*p >= '0' && *p <= '9') p++;
        len = (size_t)(p - s);
    } else {       // drop the last component (".weight", ".bias")
        const char *dot = strrchr(s, '.');
        len = dot ? (size_t)(dot - s) : strlen(s);
    }
    if (len >= out_size) len = out_size - 1;
    memcpy(out, s, len);
    out[len] = '\0';
}

int diag_init(Diag *d, const DiagConfig *cfg, const TensorView *params,
              const TensorView *grads, int n_tensors) {
    memset(d, 0, sizeof *d);
    if (n_tensors <= 0 || !grads) return attn_error("diagnostics: no gradient tensors given");
    if (cfg->spike_zscore <= 0) return attn_error("diagnostics: spike z-score must be positive, got %g", cfg->spike_zscore);
    if (cfg->nan_action != DIAG_STOP && cfg->nan_action != DIAG_SKIP)
        return attn_error("diagnostics: the NaN action must be stop or skip, got %s", diag_action_name(cfg->nan_action));
    if (cfg->spike_action == DIAG_STOP)
        return attn_error("diagnostics: the spike action must be off, warn, skip or scale_lr");
    if (cfg->lr_scale_factor <= 0 || cfg->lr_scale_factor >= 1)
        return attn_error("diagnostics: lr scale factor must be in (0, 1), got %g", cfg->lr_scale_factor);
    d->cfg = *cfg;
    d->n_tensors = n_tensors;
    d->grads = malloc_check(sizeof(TensorView) * n_tensors);
    memcpy(d->grads, grads, sizeof(TensorView) * n_tensors);
    long total = 0;
    for (int i = 0; i < n_tensors; i++) total += grads[i].numel;
    if (params) {
        d->params = malloc_check(sizeof(TensorView) * n_tensors);
        memcpy(d->params, params, sizeof(TensorView) * n_tensors);
        if (cfg->stats_every > 0) d->param_snapshot = malloc_check(sizeof(float) * total);
    }
    d->tensor_group = malloc_check(sizeof(int) * n_tensors);
    d->group_names = malloc_check(sizeof *d->group_names * n_tensors);
    for (int i = 0; i < n_tensors; i++) {
        char name[64];
        diag_group_name(grads[i].name, name, sizeof name);
        int g = 0;
        while (g < d->n_groups && strcmp(d->group_names[g], name) != 0) g++;
        if (g == d->n_groups) memcpy(d->group_names[d->n_groups++], name, sizeof name);
        d->tensor_group[i] = g;
    }
    d->tensor_sumsq = calloc_check(n_tensors, sizeof(double));
    d->group_grad_norm = calloc_check(d->n_groups, sizeof(double));
    d->group_scratch = calloc_check(d->n_groups, sizeof(double));
    d->group_weight_sq = calloc_check(d->n_groups, sizeof(double));
    d->group_update_sq = calloc_check(d->n_groups, sizeof(double));
    d->group_low_steps = calloc_check(d->n_groups, sizeof(int));
    zscore_init(&d->loss_stats, cfg->spike_window);
    zscore_init(&d->grad_stats, cfg->spike_window);
    d->lr_multiplier = 1.0;
    d->best_valid = INFINITY;
    d->best_step = -1;
    return 0;
}

void diag_free(Diag *d) {
    free(d->params); free(d->grads); free(d->tensor_group); free(d->group_names);
    free(d->tensor_sumsq); free(d->group_grad_norm); free(d->group_scratch);
    free(d->group_weight_sq); free(d->group_update_sq);
    free(d->group_low_steps); free(d->param_snapshot);
    memset(d, 0, sizeof *d);
}

// ----------------------------------------------------------------------------
// per-step check

// Appends to the result's message ("; " between messages) and raises its action.
static void report(DiagResult *res, DiagAction action, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void report(DiagResult *res, DiagAction action, const char *fmt, ...) {
    size_t used = strlen(res->message);
    if (used && used + 2 < sizeof res->message) { strcpy(res->message + used, "; "); used += 2; }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(res->message + used, sizeof res->message - used, fmt, ap);
    va_end(ap);
    if (action > res->action) res->action = action;
}

// One pass: per-tensor and per-group sums of squares. Returns the global norm
// (NaN/Inf when any gradient is non-finite; a float squared cannot overflow
// a double, so a non-finite sum means a non-finite element).
static double scan_grads(Diag *d) {
    double total = 0;
    for (int g = 0; g < d->n_groups; g++) d->group_grad_norm[g] = 0;
    for (int i = 0; i < d->n_tensors; i++) {
        d->tensor_sumsq[i] = sum_squares(d->grads[i].data, d->grads[i].numel);
        d->group_grad_norm[d->tensor_group[i]] += d->tensor_sumsq[i];
        total += d->tensor_sumsq[i];
    }
    for (int g = 0; g < d->n_groups; g++) d->group_grad_norm[g] = sqrt(d->group_grad_norm[g]);
    return sqrt(total);
}

// Only on failure: names the non-finite gradient tensor nearest the output.
// model_tensors() lists tensors in forward order, and backward runs in
// reverse, so a NaN born in backward spreads to every tensor listed before
// the place it was born: the last offending tensor in the list is the one
// backward reached first, where to look. The first in the list is named too.
static void report_nonfinite_grads(Diag *d, long step, DiagResult *res) {
    int n_bad = 0, first = -1;
    for (int i = 0; i < d->n_tensors; i++) {
        if (isfinite(d->tensor_sumsq[i])) continue;
        n_bad++;
        if (first < 0) first = i;
        res->bad_tensor = i;
    }
    const TensorView *t = &d->grads[res->bad_tensor];
    for (long k = 0; k < t->numel; k++)
        if (!isfinite(t->data[k])) { res->bad_index = k; break; }
    float v = t->data[res->bad_index];
    char layer[32] = "", also[160] = "";
    if (t->layer >= 0) snprintf(layer, sizeof layer, " (layer %d)", t->layer);
    if (n_bad > 1) snprintf(also, sizeof also, "; earliest affected %s", d->grads[first].name);
    report(res, d->cfg.nan_action,
           "non-finite gradient at step %ld in %d of %d tensors: nearest the output %s%s at element %ld (%s)%s",
           step, n_bad, d->n_tensors, t->name, layer, res->bad_index, isnan(v) ? "nan" : "inf", also);
}

// A layer group far below the median group norm for `vanish_patience` checks
// in a row gets one warning (again only after it recovers and sinks again).
static void check_vanishing(Diag *d, DiagResult *res) {
    if (d->cfg.vanish_ratio <= 0 || d->n_groups < 2) return;
    memcpy(d->group_scratch, d->group_grad_norm, sizeof(double) * d->n_groups);
    for (int i = 1; i < d->n_groups; i++)  // insertion sort: a few dozen groups
        for (int j = i; j > 0 && d->group_scratch[j - 1] > d->group_scratch[j]; j--) {
            double t = d->group_scratch[j]; d->group_scratch[j] = d->group_scratch[j - 1]; d->group_scratch[j - 1] = t;
        }
    double median = d->group_scratch[d->n_groups / 2];
    if (!(median > 0)) return;
    for (int g = 0; g < d->n_groups; g++) {
        if (d->group_grad_norm[g] >= d->cfg.vanish_ratio * median) { d->group_low_steps[g] = 0; continue; }
        if (++d->group_low_steps[g] != d->cfg.vanish_patience) continue;
        report(res, DIAG_WARN,
               "vanishing gradients: %s has gradient norm %.3g, %.1e of the median layer's %.3g, for %d checks",
               d->group_names[g], d->group_grad_norm[g], d->group_grad_norm[g] / median, median,
               d->cfg.vanish_patience);
    }
}

static void check_spikes(Diag *d, long step, float loss, DiagResult *res) {
    res->loss_z = zscore_push(&d->loss_stats, loss, d->cfg.spike_min_count);
    res->grad_z = zscore_push(&d->grad_stats, res->grad_norm, d->cfg.spike_min_count);
    if (d->cfg.spike_action == DIAG_OK) return;
    int loss_spike = res->loss_z > d->cfg.spike_zscore;
    int grad_spike = res->grad_z > d->cfg.spike_zscore;
    if (!loss_spike && !grad_spike) return;
    if (d->cfg.spike_action == DIAG_SCALE_LR) d->lr_multiplier *= d->cfg.lr_scale_factor;
    const char *what = d->cfg.spike_action == DIAG_SKIP ? "update skipped"
                     : d->cfg.spike_action == DIAG_SCALE_LR ? "learning rate scaled down" : "warning only";
    char scaled[48] = "";
    if (d->cfg.spike_action == DIAG_SCALE_LR) snprintf(scaled, sizeof scaled, " to x%.3g", d->lr_multiplier);
    if (grad_spike)
        report(res, d->cfg.spike_action,
               "gradient norm spike at step %ld: %.4g against a mean of %.4g over the last %d steps, %.1f std above (%s%s)",
               step, res->grad_norm, d->grad_stats.mean, d->grad_stats.n, res->grad_z, what, scaled);
    if (loss_spike)
        report(res, d->cfg.spike_action,
               "loss spike at step %ld: %.4g against a mean of %.4g over the last %d steps, %.1f std above (%s%s)",
               step, loss, d->loss_stats.mean, d->loss_stats.n, res->loss_z, what, scaled);
}

DiagAction diag_check_step(Diag *d, long step, float loss, DiagResult *res) {
    memset(res, 0, sizeof *res);
    res->bad_tensor = -1;
    res->grad_norm = scan_grads(d);
    if (!isfinite(loss))
        report(res, d->cfg.nan_action, "non-finite loss (%s) at step %ld", isnan(loss) ? "nan" : "inf", step);
    if (!isfinite(res->grad_norm)) report_nonfinite_grads(d, step, res);
    if (isfinite(loss) && isfinite(res->grad_norm)) {
        check_spikes(d, step, loss, res);
        check_vanishing(d, res);
    } else {
        res->loss_z = res->grad_z = NAN;
    }
    if (res->action == DIAG_SKIP) {
        if (++d->consecutive_skips >= d->cfg.max_consecutive_skips)
            report(res, DIAG_STOP, "%d steps in a row skipped: training has diverged (lower the learning rate or add warmup)",
                   d->consecutive_skips);
    } else {
        d->consecutive_skips = 0;
    }
    return res->action;
}

double diag_lr_multiplier(const Diag *d) { return d->lr_multiplier; }

// ----------------------------------------------------------------------------
// the state saved with a checkpoint
//
// The detector state that can change the weights (a spike skips an update
// or scales the rate, judged against windows of recent losses and gradient
// norms) travels in the training state, so a resumed run judges alike:
// "v1 lr_multiplier consecutive_skips" then, per window (loss, gradient
// norm), "window count next" and its values, all with 17 digits.

static void append_zscore(StrBuf *sb, const ZScore *z) {
    sb_printf(sb, " %d %d %d", z->window, z->count, z->next);
    for (int i = 0; i < z->window; i++) sb_printf(sb, " %.17g", z->values[i]);
}

char *diag_state_text(const Diag *d) {
    StrBuf sb = {0};
    sb_printf(&sb, "v1 %.17g %d", d->lr_multiplier, d->consecutive_skips);
    append_zscore(&sb, &d->loss_stats);
    append_zscore(&sb, &d->grad_stats);
    return sb.data;
}

// Reads one window written by append_zscore; its size must be this run's.
static int read_zscore(const char **p, ZScore *z) {
    char *end;
    long window = strtol(*p, &end, 10), count = strtol(end, &end, 10), next = strtol(end, &end, 10);
    if (window != z->window || count < 0 || count > window || next < 0 || next >= window) return -1;
    z->count = (int)count;
    z->next = (int)next;
    for (int i = 0; i < window; i++) {
        char *after;
        z->values[i] = strtod(end, &after);
        if (after == end) return -1;
        end = after;
    }
    *p = end;
    return 0;
}

int diag_state_restore(Diag *d, const char *text, const char *origin) {
    if (strncmp(text, "v1 ", 3) != 0) return attn_error("%s: diagnostics state: unknown version", origin);
    const char *p = text + 3;
    char *end, *after;
    double multiplier = strtod(p, &end);
    long skips = strtol(end, &after, 10);
    p = after;
    if (after == end || !(multiplier >= 0 && multiplier <= 1) || skips < 0 || skips > d->cfg.max_consecutive_skips ||
        read_zscore(&p, &d->loss_stats) != 0 || read_zscore(&p, &d->grad_stats) != 0)
        return attn_error("%s: diagnostics state is malformed (or spike windows of another size)", origin);
    d->lr_multiplier = multiplier;
    d->consecutive_skips = (int)skips;
    return 0;
}

// ----------------------------------------------------------------------------
// per-layer statistics

int diag_stats_due(const Diag *d, long step) {
    return d->cfg.stats_every > 0 && step % d->cfg.stats_every == 0;
}

void diag_snapshot_params(Diag *d) {
    if (!d->param_snapshot) return;
    long off = 0;
    for (int i = 0; i < d->n_tensors; i++) {
        memcpy(d->param_snapshot + off, d->params[i].data, sizeof(float) * d->params[i].numel);
        off += d->params[i].numel;
    }
    d->snapshot_valid = 1;
}

static void append_number(StrBuf *out, double x) {
    // JSON has no NaN/Inf: write null so that readers still parse the line.
    if (isfinite(x)) sb_printf(out, "%.6g", x); else sb_puts(out, "null");
}

void diag_layer_stats_json(Diag *d, long step, StrBuf *out) {
    double *weight_sq = d->group_weight_sq, *update_sq = d->group_update_sq;
    for (int g = 0; g < d->n_groups; g++) weight_sq[g] = update_sq[g] = 0;
    long off = 0;
    for (int i = 0; i < d->n_tensors && d->params; i++) {
        const TensorView *p = &d->params[i];
        int g = d->tensor_group[i];
        weight_sq[g] += sum_squares(p->data, p->numel);
        if (d->snapshot_valid) {
            double s = 0;
            for (long k = 0; k < p->numel; k++) {
                double u = (double)p->data[k] - d->param_snapshot[off + k];
                s += u * u;
            }
            update_sq[g] += s;
        }
        off += p->numel;
    }
    sb_printf(out, "{\"type\":\"layer_stats\",\"step\":%ld,\"layers\":{", step);
    for (int g = 0; g < d->n_groups; g++) {
        if (g) sb_puts(out, ",");
        json_append_string(out, d->group_names[g]);
        sb_puts(out, ":{\"grad_norm\":");
        append_number(out, d->group_grad_norm[g]);
        if (d->params) {
            sb_puts(out, ",\"weight_norm\":");
            append_number(out, sqrt(weight_sq[g]));
            if (d->snapshot_valid) {
                sb_puts(out, ",\"update_ratio\":");
                append_number(out, weight_sq[g] > 0 ? sqrt(update_sq[g] / weight_sq[g]) : NAN);
            }
        }
        sb_puts(out, "}");
    }
    sb_puts(out, "}}");
    d->snapshot_valid = 0;
}

void diag_activation_stats_json(const TensorView *acts, int n, StrBuf *out) {
    for (int i = 0; i < n; i++) {
        double sum = 0, sumsq = 0, max_abs = 0;
        for (long k = 0; k < acts[i].numel; k++) {
            double x = acts[i].data[k];
            sum += x; sumsq += x * x;
            if (fabs(x) > max_abs || isnan(x)) max_abs = fabs(x);
        }
        long n_el = acts[i].numel > 0 ? acts[i].numel : 1;
        double mean = sum / n_el, var = sumsq / n_el - mean * mean;
        if (i) sb_puts(out, ",");
        json_append_string(out, acts[i].name);
        sb_puts(out, ":{\"mean\":");
        append_number(out, mean);
        sb_puts(out, ",\"std\":");
        append_number(out, sqrt(var > 0 ? var : 0));
        sb_puts(out, ",\"max_abs\":");
        append_number(out, max_abs);
        sb_puts(out, "}");
    }
}

double diag_attention_entropy(const float *probs, long rows, int S) {
    double total = 0;
    long counted = 0;
    for (long r = 0; r < rows; r++) {
        const float *p = probs + r * S;
        double mass = 0, h = 0;
        for (int s = 0; s < S; s++) {
            mass += p[s];
            if (p[s] > 0) h -= p[s] * log(p[s]);
        }
        if (mass < 0.5) continue;
        total += h;
        counted++;
    }
    return counted ? total / counted : NAN;
}

// Mean, std and max |x| over the rows (of width C) whose pad flag is 0.
static void append_masked_stats(StrBuf *out, const char *name, const float *x, const uint8_t *pad, long rows, int C) {
    double sum = 0, sumsq = 0, max_abs = 0;
    long n = 0;
    for (long r = 0; r < rows; r++) {
        if (pad && pad[r]) continue;
        for (int c = 0; c < C; c++) {
            double v = x[r * C + c];
            sum += v; sumsq += v * v;
            if (fabs(v) > max_abs || isnan(v)) max_abs = fabs(v);
        }
        n += C;
    }
    double mean = n ? sum / n : NAN, var = n ? sumsq / n - mean * mean : NAN;
    json_append_string(out, name);
    sb_puts(out, ":{\"mean\":");
    append_number(out, mean);
    sb_puts(out, ",\"std\":");
    append_number(out, n ? sqrt(var > 0 ? var : 0) : NAN);
    sb_puts(out, ",\"max_abs\":");
    append_number(out, max_abs);
    sb_puts(out, "}");
}

// Mean entropy of probs (B, NH, Tq, Tk) over the rows of non-pad queries.
static double masked_attention_entropy(const float *probs, const uint8_t *q_pad, int B, int NH, int Tq, int Tk) {
    double total = 0;
    long counted = 0;
    for (int b = 0; b < B; b++)
        for (int h = 0; h < NH; h++)
            for (int i = 0; i < Tq; i++) {
                if (q_pad && q_pad[b * Tq + i]) continue;
                double e = diag_attention_entropy(probs + (((long)b * NH + h) * Tq + i) * Tk, 1, Tk);
                if (isnan(e)) continue;
                total += e;
                counted++;
            }
    return counted ? total / counted : NAN;
}

void diag_model_activations_json(const Model *m, long step, StrBuf *out) {
    const Activations *a = m->acts;
    const ModelConfig *c = &m->config;
    int B = a->B, S = a->S, T = a->T, C = c->d_model, NH = c->n_heads;
    char name[64];
    sb_printf(out, "{\"type\":\"activation_stats\",\"step\":%ld,\"sublayers\":{", step);
    for (int l = 0; l < c->n_enc_layers; l++) {
        const EncoderLayerActs *e = &a->enc[l];
        snprintf(name, sizeof name, "encoder.layers.%d.self_attn", l);
        if (l) sb_puts(out, ",");
        append_masked_stats(out, name, e->self.out, a->src_pad, (long)B * S, C);
        snprintf(name, sizeof name, "encoder.layers.%d.ffn", l);
        sb_puts(out, ",");
        append_masked_stats(out, name, e->ff2, a->src_pad, (long)B * S, C);
        snprintf(name, sizeof name, "encoder.layers.%d.out", l);
        sb_puts(out, ",");
        append_masked_stats(out, name, c->norm_first ? e->res2 : e->ln2, a->src_pad, (long)B * S, C);
    }
    for (int l = 0; l < c->n_dec_layers; l++) {
        const DecoderLayerActs *d = &a->dec[l];
        const float *outs[4] = {d->self.out, d->cross.out, d->ff2, c->norm_first ? d->res3 : d->ln3};
        const char *parts[4] = {"self_attn", "cross_attn", "ffn", "out"};
        for (int k = 0; k < 4; k++) {
            snprintf(name, sizeof name, "decoder.layers.%d.%s", l, parts[k]);
            sb_puts(out, ",");
            append_masked_stats(out, name, outs[k], a->tgt_pad, (long)B * T, C);
        }
    }
    sb_puts(out, "},\"attention_entropy\":{");
    for (int l = 0; l < c->n_enc_layers; l++) {
        sb_printf(out, "%s\"encoder.layers.%d.self_attn\":", l ? "," : "", l);
        append_number(out, masked_attention_entropy(a->enc[l].self.probs, a->src_pad, B, NH, S, S));
    }
    for (int l = 0; l < c->n_dec_layers; l++) {
        sb_printf(out, ",\"decoder.layers.%d.self_attn\":", l);
        append_number(out, masked_attention_entropy(a->dec[l].self.probs, a->tgt_pad, B, NH, T, T));
        sb_printf(out, ",\"decoder.layers.%d.cross_attn\":", l);
        append_number(out, masked_attention_entropy(a->dec[l].cross.probs, a->tgt_pad, B, NH, T, S));
    }
    sb_puts(out, "}}");
}

// ----------------------------------------------------------------------------
// overfitting

DiagAction diag_observe_eval(Diag *d, long step, double train_loss, double valid_loss, DiagResult *res) {
    memset(res, 0, sizeof *res);
    res->bad_tensor = -1;
    d->n_evals++;
    if (valid_loss < d->best_valid) {
        d->best_valid = valid_loss;
        d->train_at_best = train_loss;
        d->best_step = step;
        d->evals_since_best = 0;
        d->overfit_reported = 0;
    } else {
        d->evals_since_best++;
    }
    res->evals_since_best = d->evals_since_best;
    if (d->cfg.overfit_patience <= 0) return DIAG_OK;
    res->overfitting = d->evals_since_best >= d->cfg.overfit_patience
                    && valid_loss > d->best_valid * (1 + d->cfg.overfit_min_rise)
                    && train_loss < d->train_at_best;
    if (res->overfitting && !d->overfit_reported) {
        d->overfit_reported = 1;
        report(res, DIAG_WARN,
               "overfitting: valid loss rose from %.4f (step %ld) to %.4f (step %ld) while train loss fell from %.4f to %.4f",
               d->best_valid, d->best_step, valid_loss, step, d->train_at_best, train_loss);
    }
    return res->action;
}

// ----------------------------------------------------------------------------
// saving the batch of a failed step

static void append_id_rows(StrBuf *sb, const char *key, const int *ids, int rows, int cols) {
    sb_printf(sb, ",\n\"%s\":[", key);
    for (int r = 0; r < rows; r++) {
        sb_puts(sb, r ? ",\n [" : "[");
        for (int c = 0; c < cols; c++) sb_printf(sb, c ? ",%d" : "%d", ids[(long)r * cols + c]);
        sb_puts(sb, "]");
    }
    sb_puts(sb, "]");
}

int diag_save_batch(const char *path, const Batch *b) {
    StrBuf sb = {0};
    sb_printf(&sb, "{\"B\":%d,\"S\":%d,\"T\":%d", b->B, b->S, b->T);
    if (b->src) append_id_rows(&sb, "src", b->src, b->B, b->S);
    if (b->tgt_in) append_id_rows(&sb, "tgt_in", b->tgt_in, b->B, b->T);
    if (b->tgt_out) append_id_rows(&sb, "tgt_out", b->tgt_out, b->B, b->T);
    sb_puts(&sb, "}\n");
    int rc = write_file_atomic(path, sb.data, sb.len);
    sb_free(&sb);
    return rc;
}
