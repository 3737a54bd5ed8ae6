// Learning-rate schedules: pure functions of the step, so a resumed run only
// needs the step to be back on the same curve.
#include "schedule.h"
#include "common.h"
#include <math.h>
#include <string.h>

static const char *const schedule_names[] = {"noam", "inverse_sqrt", "cosine", "constant"};

const char *schedule_name(ScheduleType t) {
    return (t >= 0 && t <= SCHED_CONSTANT) ? schedule_names[t] : "?";
}

int schedule_parse(const char *name, ScheduleType *out) {
    for (int i = 0; i <= SCHED_CONSTANT; i++) {
        if (strcmp(name, schedule_names[i]) == 0) { *out = (ScheduleType)i; return 0; }
    }
    return attn_error("unknown schedule '%s' (noam, inverse_sqrt, cosine or constant)", name);
}

// Linear ramp from lr/warmup at step 1 to lr at step == warmup.
static double warmup_factor(long step, long warmup) {
    return (warmup > 0 && step < warmup) ? (double)step / (double)warmup : 1.0;
}

double schedule_lr(const Schedule *s, long step) {
    if (step < 1) step = 1;
    double t = (double)step, w = s->warmup_steps > 0 ? (double)s->warmup_steps : 1.0;
    switch (s->type) {
    case SCHED_NOAM:
        return s->scale / sqrt((double)s->d_model) * fmin(1.0 / sqrt(t), t * pow(w, -1.5));
    case SCHED_INVSQRT:
        if (step < s->warmup_steps) return s->lr * warmup_factor(step, s->warmup_steps);
        return s->lr * sqrt(w / t);
    case SCHED_COSINE: {
        if (step < s->warmup_steps) return s->lr * warmup_factor(step, s->warmup_steps);
        long span = s->decay_steps - s->warmup_steps;
        if (span <= 0 || step >= s->decay_steps) return s->min_lr;
        double progress = (double)(step - s->warmup_steps) / (double)span;
        return s->min_lr + 0.5 * (s->lr - s->min_lr) * (1.0 + cos(M_PI * progress));
    }
    case SCHED_CONSTANT:
        return s->lr * warmup_factor(step, s->warmup_steps);
    }
    return s->lr;
}
