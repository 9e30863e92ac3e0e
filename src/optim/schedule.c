/* Learning-rate schedules with Keras 3's formulas (ExponentialDecay,
 * PiecewiseConstantDecay, CosineDecay without warmup), evaluated in double.
 * Constructors cannot report errors (no context), so a schedule built from
 * bad arguments remembers why and lm_optimizer_build reports it. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "optim/rules.h"

#define PI_D 3.14159265358979323846

typedef enum { SCHED_EXP, SCHED_PIECEWISE, SCHED_COSINE } sched_kind;

struct lm_schedule {
    sched_kind kind;
    double lr0, decay_rate, alpha;
    int64_t decay_steps;
    bool staircase;
    int n; /* piecewise: number of boundaries */
    int64_t *boundaries;
    double *values; /* n + 1 */
    char err[160];  /* empty when valid */
};

static lm_schedule *sched_new(sched_kind k) {
    lm_schedule *s = calloc(1, sizeof *s);
    if (s) s->kind = k;
    return s;
}

static void check_lr0(lm_schedule *s, const char *name) {
    if (!(s->lr0 >= 0) || isinf(s->lr0))
        snprintf(s->err, sizeof s->err, "%s: initial_learning_rate must be >= 0, got %g", name,
                 s->lr0);
    else if (s->decay_steps <= 0)
        snprintf(s->err, sizeof s->err, "%s: decay_steps must be > 0, got %lld", name,
                 (long long)s->decay_steps);
}

lm_schedule *lm_exponential_decay(double initial_learning_rate, int64_t decay_steps,
                                  double decay_rate, bool staircase) {
    lm_schedule *s = sched_new(SCHED_EXP);
    if (!s) return NULL;
    s->lr0 = initial_learning_rate;
    s->decay_steps = decay_steps;
    s->decay_rate = decay_rate;
    s->staircase = staircase;
    check_lr0(s, "ExponentialDecay");
    /* pow of a negative base at fractional steps is NaN. */
    if (!s->err[0] && (!(decay_rate > 0) || isinf(decay_rate)))
        snprintf(s->err, sizeof s->err, "ExponentialDecay: decay_rate must be > 0, got %g",
                 decay_rate);
    return s;
}

lm_schedule *lm_cosine_decay(double initial_learning_rate, int64_t decay_steps, double alpha) {
    lm_schedule *s = sched_new(SCHED_COSINE);
    if (!s) return NULL;
    s->lr0 = initial_learning_rate;
    s->decay_steps = decay_steps;
    s->alpha = alpha;
    check_lr0(s, "CosineDecay");
    if (!s->err[0] && !(alpha >= 0 && alpha <= 1))
        snprintf(s->err, sizeof s->err, "CosineDecay: alpha must be in [0, 1], got %g", alpha);
    return s;
}

lm_schedule *lm_piecewise_constant_decay(int n, const int64_t *boundaries, const double *values) {
    lm_schedule *s = sched_new(SCHED_PIECEWISE);
    if (!s) return NULL;
    if (n < 0 || (n > 0 && !boundaries) || !values) {
        snprintf(s->err, sizeof s->err,
                 "PiecewiseConstantDecay: needs n >= 0 boundaries and n + 1 values (n = %d%s%s)", n,
                 boundaries ? "" : ", boundaries NULL", values ? "" : ", values NULL");
        return s;
    }
    s->n = n;
    s->boundaries = malloc(sizeof *s->boundaries * (size_t)(n ? n : 1));
    s->values = malloc(sizeof *s->values * (size_t)(n + 1));
    if (!s->boundaries || !s->values) {
        lm_schedule_free(s);
        return NULL;
    }
    if (n) memcpy(s->boundaries, boundaries, sizeof *s->boundaries * (size_t)n);
    memcpy(s->values, values, sizeof *s->values * (size_t)(n + 1));
    /* Keras sums indicator terms, which equals "first boundary >= step" only
     * for increasing boundaries; require them. */
    for (int i = 1; i < n && !s->err[0]; i++)
        if (boundaries[i] <= boundaries[i - 1])
            snprintf(s->err, sizeof s->err,
                     "PiecewiseConstantDecay: boundaries must increase, got %lld after %lld",
                     (long long)boundaries[i], (long long)boundaries[i - 1]);
    for (int i = 0; i <= n && !s->err[0]; i++)
        if (!(values[i] >= 0) || isinf(values[i]))
            snprintf(s->err, sizeof s->err,
                     "PiecewiseConstantDecay: values[%d] must be >= 0, got %g", i, values[i]);
    return s;
}

double lm_schedule_value(const lm_schedule *s, int64_t step) {
    if (!s || s->err[0]) return NAN;
    switch (s->kind) {
    case SCHED_EXP: {
        double p = (double)step / (double)s->decay_steps;
        if (s->staircase) p = floor(p);
        return s->lr0 * pow(s->decay_rate, p);
    }
    case SCHED_PIECEWISE:
        for (int i = 0; i < s->n; i++)
            if (step <= s->boundaries[i]) return s->values[i];
        return s->values[s->n];
    case SCHED_COSINE: {
        double t = (double)lm_min64(step, s->decay_steps) / (double)s->decay_steps;
        double cosine = 0.5 * (1.0 + cos(PI_D * t));
        return s->lr0 * ((1.0 - s->alpha) * cosine + s->alpha);
    }
    }
    return NAN;
}

void lm_schedule_free(lm_schedule *s) {
    if (!s) return;
    free(s->boundaries);
    free(s->values);
    free(s);
}

lm_status lm_schedule_check(const lm_schedule *s, lm_ctx *ctx, const char *who) {
    if (s && s->err[0]) return lm_fail(ctx, LM_ERR_ARG, "%s: %s", who, s->err);
    return LM_OK;
}

void lm_schedule_get_info(const lm_schedule *s, lm_schedule_info *out) {
    static const char *const cls[] = {[SCHED_EXP] = "ExponentialDecay",
                                      [SCHED_PIECEWISE] = "PiecewiseConstantDecay",
                                      [SCHED_COSINE] = "CosineDecay"};
    *out = (lm_schedule_info){.class_name = cls[s->kind],
                              .initial_learning_rate = s->lr0,
                              .decay_rate = s->decay_rate,
                              .alpha = s->alpha,
                              .decay_steps = s->decay_steps,
                              .staircase = s->staircase,
                              .n = s->n,
                              .boundaries = s->boundaries,
                              .values = s->values};
}
