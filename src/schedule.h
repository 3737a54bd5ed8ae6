// Learning-rate schedules. The optimizer step counter starts at 1 for the
// first update (as in the paper and PyTorch's LambdaLR), so step 0 is never
// asked for; every schedule returns the rate for update number `step`.
#ifndef ATTN_SCHEDULE_H
#define ATTN_SCHEDULE_H

typedef enum {
    SCHED_NOAM = 0,      // the paper: scale * d_model^-0.5 * min(step^-0.5, step * warmup^-1.5)
    SCHED_INVSQRT = 1,   // linear warmup to lr, then lr * sqrt(warmup / step)
    SCHED_COSINE = 2,    // linear warmup to lr, then cosine decay to min_lr at decay_steps
    SCHED_CONSTANT = 3,  // linear warmup to lr (if warmup > 0), then lr
} ScheduleType;

typedef struct {
    ScheduleType type;
    double lr;           // peak rate (all but noam)
    double scale;        // noam's factor (the paper used 1)
    double min_lr;       // cosine floor
    long warmup_steps;
    long decay_steps;    // cosine: step at which the rate reaches min_lr
    int d_model;         // noam
} Schedule;

// Learning rate for update `step` (>= 1).
double schedule_lr(const Schedule *s, long step);
// Name <-> type, for the config file ("noam", "inverse_sqrt", "cosine", "constant").
const char *schedule_name(ScheduleType t);
int schedule_parse(const char *name, ScheduleType *out);

#endif
