// Learning-rate schedules at known steps (values computed by hand or in
// Python from the formulas in schedule.h).
#include "schedule.h"
#include "test.h"

static void test_noam(void) {
    Schedule s = {.type = SCHED_NOAM, .scale = 1.0, .warmup_steps = 4000, .d_model = 512};
    // The paper's base model: peak 7.0e-4 at step 4000.
    CHECK(fabs(schedule_lr(&s, 1) - 1.74692810742e-07) < 1e-15, "noam step 1: %.12g", schedule_lr(&s, 1));
    CHECK(fabs(schedule_lr(&s, 100) - 1.74692810742e-05) < 1e-13, "noam step 100: %.12g", schedule_lr(&s, 100));
    CHECK(fabs(schedule_lr(&s, 4000) - 0.000698771242969) < 1e-13, "noam peak at warmup: %.12g", schedule_lr(&s, 4000));
    CHECK(fabs(schedule_lr(&s, 4001) - 0.000698683912937) < 1e-13, "noam step 4001: %.12g", schedule_lr(&s, 4001));
    CHECK(fabs(schedule_lr(&s, 10000) - 0.000441941738242) < 1e-13, "noam step 10000: %.12g", schedule_lr(&s, 10000));
    s.scale = 2.0;
    CHECK(fabs(schedule_lr(&s, 4000) - 2 * 0.000698771242969) < 1e-13, "noam scale doubles the rate");
}

static void test_inverse_sqrt(void) {
    Schedule s = {.type = SCHED_INVSQRT, .lr = 1e-3, .warmup_steps = 100};
    CHECK(fabs(schedule_lr(&s, 1) - 1e-5) < 1e-15, "inverse_sqrt step 1 = lr/warmup");
    CHECK(fabs(schedule_lr(&s, 50) - 5e-4) < 1e-15, "inverse_sqrt halfway through warmup");
    CHECK(fabs(schedule_lr(&s, 100) - 1e-3) < 1e-15, "inverse_sqrt peak at warmup");
    CHECK(fabs(schedule_lr(&s, 400) - 5e-4) < 1e-15, "inverse_sqrt at 4x warmup is lr/2");
}

static void test_cosine(void) {
    Schedule s = {.type = SCHED_COSINE, .lr = 1e-3, .min_lr = 1e-5, .warmup_steps = 10, .decay_steps = 110};
    CHECK(fabs(schedule_lr(&s, 5) - 5e-4) < 1e-15, "cosine warmup");
    CHECK(fabs(schedule_lr(&s, 10) - 1e-3) < 1e-15, "cosine peak at warmup");
    CHECK(fabs(schedule_lr(&s, 60) - (1e-5 + 0.5 * (1e-3 - 1e-5))) < 1e-15, "cosine midpoint is halfway");
    CHECK(fabs(schedule_lr(&s, 110) - 1e-5) < 1e-15, "cosine reaches min_lr at decay_steps");
    CHECK(fabs(schedule_lr(&s, 500) - 1e-5) < 1e-15, "cosine stays at min_lr after");
    int monotone = 1;
    for (long t = 11; t <= 110; t++) if (schedule_lr(&s, t) > schedule_lr(&s, t - 1)) monotone = 0;
    CHECK(monotone, "cosine decays monotonically after warmup");
}

static void test_constant(void) {
    Schedule s = {.type = SCHED_CONSTANT, .lr = 3e-4};
    CHECK(schedule_lr(&s, 1) == 3e-4 && schedule_lr(&s, 123456) == 3e-4, "constant without warmup");
    s.warmup_steps = 4;
    CHECK(fabs(schedule_lr(&s, 2) - 1.5e-4) < 1e-15 && schedule_lr(&s, 4) == 3e-4, "constant with warmup");
}

static void test_names(void) {
    ScheduleType t;
    CHECK(schedule_parse("cosine", &t) == 0 && t == SCHED_COSINE, "parse cosine");
    CHECK(schedule_parse("linear", &t) != 0, "unknown schedule is an error");
    for (int i = 0; i <= SCHED_CONSTANT; i++) {
        CHECK(schedule_parse(schedule_name((ScheduleType)i), &t) == 0 && t == (ScheduleType)i,
              "name round trip: %s", schedule_name((ScheduleType)i));
    }
}

int main(void) {
    test_noam();
    test_inverse_sqrt();
    test_cosine();
    test_constant();
    test_names();
    TEST_EXIT();
}
