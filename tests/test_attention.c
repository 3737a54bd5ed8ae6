// Multi-head attention against a naive reference (double) and its backward
// against central finite differences of loss = sum(out * R): the core over
// projected Q, K, V (self, causal, cross, KV-cache layout, dropout) and the
// whole self/cross sublayers with their packed in_proj.
#include <stdlib.h>
#include <string.h>
#include "attention.h"
#include "common.h"
#include "test.h"

static Rng rng;

static float *random_floats(long n, float scale) {
    float *x = malloc_check((size_t)n * sizeof(float));
    for (long i = 0; i < n; i++) x[i] = scale * (2.0f * rng_uniform(&rng) - 1.0f);
    return x;
}
static float *zeros(long n) { return calloc_check((size_t)n, sizeof(float)); }


// ---------------------------------------------------------------------------
// The core against naive loops

static void ref_attention(double *out, const float *q, const float *k, const float *v,
                          const uint8_t *pad, const AttnDims *d) {
    int HS = d->C / d->NH;
    double *p = malloc_check((size_t)d->Tk * sizeof(double));
    for (int b = 0; b < d->B; b++) for (int h = 0; h < d->NH; h++) for (int i = 0; i < d->Tq; i++) {
        const float *qi = q + ((long)b * d->Tq + i) * d->ldq + h * HS;
        double mx = -INFINITY, sum = 0;
        for (int j = 0; j < d->Tk; j++) {
            int visible = !(pad && pad[(long)b * d->kv_rows + j]) && (!d->causal || j <= i + d->Tk - d->Tq);
            const float *kj = k + ((long)b * d->kv_rows + j) * d->ldkv + h * HS;
            double s = 0;
            for (int c = 0; c < HS; c++) s += (double)qi[c] * kj[c];
            p[j] = visible ? s / sqrt((double)HS) : -INFINITY;
            if (p[j] > mx) mx = p[j];
        }
        for (int j = 0; j < d->Tk; j++) { p[j] = mx == -INFINITY ? 0 : exp(p[j] - mx); sum += p[j]; }
        for (int c = 0; c < HS; c++) {
            double o = 0;
            for (int j = 0; j < d->Tk; j++)
                o += (sum > 0 ? p[j] / sum : 0) * v[((long)b * d->kv_rows + j) * d->ldkv + h * HS + c];
            out[((long)b * d->Tq + i) * d->C + h * HS + c] = o;
        }
    }
    free(p);
}

// One layout: q, k, v in separate buffers with the given strides.
static double check_core_forward(AttnDims d, int pad_mode) {
    long nq = (long)d.B * d.Tq * d.ldq, nkv = (long)d.B * d.kv_rows * d.ldkv;
    float *q = random_floats(nq, 1), *k = random_floats(nkv, 1), *v = random_floats(nkv, 1);
    uint8_t *pad = calloc_check((size_t)d.B * d.kv_rows, 1);
    for (int b = 0; b < d.B; b++)
        for (int j = 0; j < d.Tk; j++) {
            if (pad_mode == 1) pad[(long)b * d.kv_rows + j] = j != (b * 7) % d.Tk;  // all but one key hidden
            if (pad_mode == 2) pad[(long)b * d.kv_rows + j] = j >= d.Tk - b;        // trailing padding
        }
    long no = (long)d.B * d.Tq * d.C, np = (long)d.B * d.NH * d.Tq * d.Tk;
    float *out = zeros(no), *probs = zeros(np);
    double *ref = malloc_check((size_t)no * sizeof(double));
    attention_forward(out, probs, NULL, NULL, q, k, v, pad_mode ? pad : NULL, &d, 0.0f, NULL);
    ref_attention(ref, q, k, v, pad_mode ? pad : NULL, &d);
    double err = 0;
    for (long i = 0; i < no; i++) if (fabs(out[i] - ref[i]) > err) err = fabs(out[i] - ref[i]);
    free(q); free(k); free(v); free(pad); free(out); free(probs); free(ref);
    return err;
}

static void test_core_forward(void) {
    // {B, Tq, Tk, C, NH, ldq, ldkv, kv_rows, causal}
    AttnDims cases[] = {
        {3, 17, 17, 12, 3, 12, 12, 17, 0},   // encoder self-attention
        {3, 17, 17, 12, 3, 12, 12, 17, 1},   // decoder causal self-attention
        {2, 3, 65, 8, 2, 8, 16, 65, 0},      // cross: ldkv = 2C
        {1, 1, 1, 3, 1, 3, 3, 1, 1},         // one position, one head of size 3
        {2, 1, 5, 8, 4, 24, 8, 9, 1},        // one decoding step over a cache of capacity 9
        {2, 3, 5, 8, 2, 8, 8, 7, 1},         // Tq < Tk causal: the last Tq positions
    };
    const char *names[] = {"self", "causal", "cross", "1x1", "cache step", "causal Tq<Tk"};
    for (int i = 0; i < 6; i++) {
        double e0 = check_core_forward(cases[i], 0), e1 = check_core_forward(cases[i], 1), e2 = check_core_forward(cases[i], 2);
        double e = fmax(e0, fmax(e1, e2));
        CHECK(e < 1e-5, "attention forward = naive (%s; no mask, all-but-one key, trailing pad) max abs %.1e", names[i], e);
    }
}

// ---------------------------------------------------------------------------
// The core's backward

typedef struct {
    AttnDims d;
    float *q, *k, *v, *R, *out, *probs, *probs_drop;
    uint8_t *pad, *keep;
    float p_drop;
} CoreCtx;

static double core_loss(void *c) {
    CoreCtx *x = c;
    Rng r;
    rng_seed(&r, 77);  // the same dropout mask at every evaluation
    attention_forward(x->out, x->probs, x->probs_drop, x->keep, x->q, x->k, x->v, x->pad, &x->d, x->p_drop, &r);
    return dot(x->out, x->R, (long)x->d.B * x->d.Tq * x->d.C);
}

static void check_core_backward(AttnDims d, float p_drop, const char *name) {
    long nq = (long)d.B * d.Tq * d.ldq, nkv = (long)d.B * d.kv_rows * d.ldkv;
    long no = (long)d.B * d.Tq * d.C, np = (long)d.B * d.NH * d.Tq * d.Tk;
    CoreCtx x = {d, random_floats(nq, 1), random_floats(nkv, 1), random_floats(nkv, 1), random_floats(no, 1),
                 zeros(no), zeros(np), zeros(np), calloc_check((size_t)d.B * d.kv_rows, 1),
                 malloc_check((size_t)np), p_drop};
    for (int b = 0; b < d.B; b++) x.pad[(long)b * d.kv_rows + d.Tk - 1] = b == 0;  // one padded key
    core_loss(&x);
    float *dq = zeros(nq), *dk = zeros(nkv), *dv = zeros(nkv), *dprobs = zeros(np);
    attention_backward(dq, dk, dv, dprobs, x.R, x.q, x.k, x.v, x.probs, x.probs_drop, x.keep, &d, p_drop);
    double e = fmax(fd_check(x.q, nq, dq, 1e-2f, core_loss, &x),
                    fmax(fd_check(x.k, nkv, dk, 1e-2f, core_loss, &x), fd_check(x.v, nkv, dv, 1e-2f, core_loss, &x)));
    CHECK(e < 3e-3, "attention backward = finite differences for q, k, v (%s) max rel %.1e", name, e);
    free(x.q); free(x.k); free(x.v); free(x.R); free(x.out); free(x.probs); free(x.probs_drop); free(x.pad); free(x.keep);
    free(dq); free(dk); free(dv); free(dprobs);
}

static void test_core_backward(void) {
    check_core_backward((AttnDims){2, 5, 5, 6, 2, 6, 6, 5, 0}, 0.0f, "self");
    check_core_backward((AttnDims){2, 5, 5, 6, 2, 6, 6, 5, 1}, 0.0f, "causal");
    check_core_backward((AttnDims){2, 3, 4, 6, 3, 6, 12, 4, 0}, 0.0f, "cross");
    check_core_backward((AttnDims){2, 4, 4, 6, 2, 6, 6, 4, 1}, 0.3f, "causal, dropout 0.3");
}

// ---------------------------------------------------------------------------
// Whole sublayers

typedef struct {
    int cross, B, Tq, Tk, C, NH, causal;
    float p_drop;
    float *x, *mem, *R;
    MhaParams w;
    MhaActs a;
    uint8_t *pad;
} SubCtx;

static double sub_loss(void *c) {
    SubCtx *s = c;
    Rng r;
    rng_seed(&r, 5);
    if (s->cross) cross_attention_forward(&s->a, s->x, s->mem, &s->w, s->pad, s->B, s->Tq, s->Tk, s->C, s->NH, s->p_drop, &r);
    else self_attention_forward(&s->a, s->x, &s->w, s->pad, s->B, s->Tq, s->C, s->NH, s->causal, s->p_drop, &r);
    return dot(s->a.out, s->R, (long)s->B * s->Tq * s->C);
}

// store: keep the dropout mask and dropped probabilities in a->drop_keep and
// a->probs_drop; without, the backward rebuilds them from a->drop_seed, and
// the attention output in MhaScratch.att.
static void check_sublayer(int cross, int causal, float p_drop, int store, const char *name) {
    int B = 2, Tq = 4, Tk = cross ? 5 : 4, C = 6, NH = 2;
    long nx = (long)B * Tq * C, nm = (long)B * Tk * C, np = (long)B * NH * Tq * Tk;
    SubCtx s = {cross, B, Tq, Tk, C, NH, causal, p_drop, random_floats(nx, 1), random_floats(nm, 1), random_floats(nx, 1),
                {random_floats(3L * C * C, 0.5f), random_floats(3L * C, 0.5f), random_floats((long)C * C, 0.5f), random_floats(C, 0.5f)},
                {zeros(B * Tq * (cross ? C : 3L * C)), cross ? zeros(B * Tk * 2L * C) : NULL, zeros(nx), zeros(np),
                 store ? zeros(np) : NULL, store ? malloc_check((size_t)np) : NULL, zeros(nx), 0},
                calloc_check((size_t)B * Tk, 1)};
    s.pad[Tk - 1] = 1;            // batch entry 0: last key is <pad>
    s.pad[Tk + Tk - 2] = 1;       // batch entry 1: second-to-last too
    sub_loss(&s);
    MhaParams g = {zeros(3L * C * C), zeros(3L * C), zeros((long)C * C), zeros(C)};
    // Without stored masks, the backward also rebuilds the attention output:
    // the kept one is poisoned to prove it is not read.
    MhaScratch scratch = {zeros(nx), zeros(B * Tq * 3L * C), zeros(B * Tk * 2L * C), zeros(np), store ? NULL : zeros(nx)};
    if (!store) for (long i = 0; i < nx; i++) s.a.att[i] = NAN;
    float *dx = zeros(nx), *dmem = zeros(nm);
    if (cross) cross_attention_backward(dx, dmem, &g, &scratch, s.R, &s.a, s.x, s.mem, &s.w, B, Tq, Tk, C, NH, p_drop);
    else self_attention_backward(dx, &g, &scratch, s.R, &s.a, s.x, &s.w, B, Tq, C, NH, causal, p_drop);
    float eps = 1e-2f;
    double e = fd_check(s.x, nx, dx, eps, sub_loss, &s);
    if (cross) e = fmax(e, fd_check(s.mem, nm, dmem, eps, sub_loss, &s));
    e = fmax(e, fd_check(s.w.in_w, 3L * C * C, g.in_w, eps, sub_loss, &s));
    e = fmax(e, fd_check(s.w.in_b, 3L * C, g.in_b, eps, sub_loss, &s));
    e = fmax(e, fd_check(s.w.out_w, (long)C * C, g.out_w, eps, sub_loss, &s));
    e = fmax(e, fd_check(s.w.out_b, C, g.out_b, eps, sub_loss, &s));
    CHECK(e < 3e-3, "%s sublayer backward = finite differences for inputs and all 4 parameters (max rel %.1e)", name, e);
    free(s.x); free(s.mem); free(s.R); free(s.w.in_w); free(s.w.in_b); free(s.w.out_w); free(s.w.out_b);
    free(s.a.q); free(s.a.kv); free(s.a.att); free(s.a.probs); free(s.a.probs_drop); free(s.a.drop_keep); free(s.a.out);
    free(s.pad); free(g.in_w); free(g.in_b); free(g.out_w); free(g.out_b);
    free(scratch.datt); free(scratch.dq); free(scratch.dkv); free(scratch.dprobs); free(scratch.att); free(dx); free(dmem);
}

// The sublayer computes out_proj(attention(x Wq^T + bq, m Wk^T + bk, m Wv^T + bv)).
static void test_sublayer_forward(void) {
    int B = 2, T = 3, S = 4, C = 4, NH = 2;
    float *x = random_floats((long)B * T * C, 1), *mem = random_floats((long)B * S * C, 1);
    MhaParams w = {random_floats(3L * C * C, 1), random_floats(3L * C, 1), random_floats((long)C * C, 1), random_floats(C, 1)};
    MhaActs a = {zeros(B * T * C), zeros(B * S * 2L * C), zeros(B * T * C), zeros((long)B * NH * T * S), NULL, NULL, zeros(B * T * C), 0};
    cross_attention_forward(&a, x, mem, &w, NULL, B, T, S, C, NH, 0.0f, NULL);
    // reference: project by hand, then the naive core, then out_proj
    float *q = zeros(B * T * C), *k = zeros(B * S * C), *v = zeros(B * S * C);
    for (int r = 0; r < B * T; r++) for (int o = 0; o < C; o++) {
        double s = w.in_b[o];
        for (int i = 0; i < C; i++) s += (double)x[r * C + i] * w.in_w[o * C + i];
        q[r * C + o] = (float)s;
    }
    for (int r = 0; r < B * S; r++) for (int o = 0; o < C; o++) {
        double sk = w.in_b[C + o], sv = w.in_b[2 * C + o];
        for (int i = 0; i < C; i++) {
            sk += (double)mem[r * C + i] * w.in_w[(C + o) * C + i];
            sv += (double)mem[r * C + i] * w.in_w[(2 * C + o) * C + i];
        }
        k[r * C + o] = (float)sk; v[r * C + o] = (float)sv;
    }
    double att[24], err = 0;
    AttnDims d = {B, T, S, C, NH, C, C, S, 0};
    ref_attention(att, q, k, v, NULL, &d);
    for (int r = 0; r < B * T; r++) for (int o = 0; o < C; o++) {
        double s = w.out_b[o];
        for (int i = 0; i < C; i++) s += att[r * C + i] * w.out_w[o * C + i];
        if (fabs(s - a.out[r * C + o]) > err) err = fabs(s - a.out[r * C + o]);
    }
    CHECK(err < 1e-5, "cross-attention: in_proj rows [0,C) on x, [C,2C) keys and [2C,3C) values on memory (max abs %.1e)", err);
    free(x); free(mem); free(w.in_w); free(w.in_b); free(w.out_w); free(w.out_b);
    free(a.q); free(a.kv); free(a.att); free(a.probs); free(a.out); free(q); free(k); free(v);
}

int main(void) {
    rng_seed(&rng, 2024);
    test_core_forward();
    test_core_backward();
    test_sublayer_forward();
    check_sublayer(0, 0, 0.0f, 0, "encoder self-attention (padding)");
    check_sublayer(0, 1, 0.0f, 0, "decoder causal self-attention (padding)");
    check_sublayer(1, 0, 0.0f, 0, "cross-attention (memory padding)");
    check_sublayer(0, 1, 0.2f, 1, "causal self-attention with attention dropout, mask stored");
    check_sublayer(1, 0, 0.2f, 1, "cross-attention with attention dropout, mask stored");
    check_sublayer(0, 1, 0.2f, 0, "causal self-attention with attention dropout, mask from the seed");
    check_sublayer(1, 0, 0.2f, 0, "cross-attention with attention dropout, mask from the seed");
    TEST_EXIT();
}
