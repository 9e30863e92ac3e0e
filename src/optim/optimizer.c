/* Optimizer objects: constructors with Keras 3's defaults, accessors, state
 * allocation (build) and the step dispatcher (learning rate, clipping,
 * weight decay, then the fused rule of rules.c).
 *
 * Constructors have no context to report errors into, so they accept any
 * value and lm_optimizer_build validates, naming the optimizer and the value.
 * Slots are kept in the order Keras creates its variables (Adam: momentum,
 * velocity, then velocity_hat); Keras interleaves momentum/velocity per
 * variable in optimizer.variables, which a saver must redo from the flat
 * per-slot vectors. */
#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "optim/rules.h"

/* Copies the LM_OPTIMIZER_COMMON fields; zero learning_rate means default. */
#define SET_COMMON(o, x, default_lr)                                                               \
    do {                                                                                           \
        (o)->lr = (x).learning_rate != 0 ? (x).learning_rate : (default_lr);                       \
        (o)->schedule = (x).schedule;                                                              \
        (o)->clipnorm = (x).clipnorm;                                                              \
        (o)->clipvalue = (x).clipvalue;                                                            \
        (o)->global_clipnorm = (x).global_clipnorm;                                                \
        (o)->weight_decay = (x).weight_decay;                                                      \
    } while (0)

static double or_default(double v, double d) {
    return v != 0 ? v : d;
}

/* Takes ownership of the schedule even on failure. */
static lm_optimizer *opt_alloc(lm_opt_kind kind, lm_schedule *schedule) {
    lm_optimizer *o = calloc(1, sizeof *o);
    if (!o) {
        lm_schedule_free(schedule);
        return NULL;
    }
    o->kind = kind;
    return o;
}

lm_optimizer *lm_sgd_(lm_sgd_opts x) {
    lm_optimizer *o = opt_alloc(LM_OPT_SGD, x.schedule);
    if (!o) return NULL;
    SET_COMMON(o, x, 0.01);
    o->momentum = x.momentum;
    o->nesterov = x.nesterov;
    return o;
}

static lm_optimizer *adam_like(lm_opt_kind kind, lm_adam_opts x, double default_wd) {
    lm_optimizer *o = opt_alloc(kind, x.schedule);
    if (!o) return NULL;
    SET_COMMON(o, x, 1e-3);
    o->weight_decay = or_default(x.weight_decay, default_wd);
    o->beta_1 = or_default(x.beta_1, 0.9);
    o->beta_2 = or_default(x.beta_2, 0.999);
    o->epsilon = or_default(x.epsilon, 1e-7);
    o->amsgrad = x.amsgrad;
    return o;
}

lm_optimizer *lm_adam_(lm_adam_opts x) {
    return adam_like(LM_OPT_ADAM, x, 0);
}

lm_optimizer *lm_adamw_(lm_adam_opts x) {
    return adam_like(LM_OPT_ADAMW, x, 0.004);
}

lm_optimizer *lm_rmsprop_(lm_rmsprop_opts x) {
    lm_optimizer *o = opt_alloc(LM_OPT_RMSPROP, x.schedule);
    if (!o) return NULL;
    SET_COMMON(o, x, 1e-3);
    o->rho = or_default(x.rho, 0.9);
    o->momentum = x.momentum;
    o->epsilon = or_default(x.epsilon, 1e-7);
    o->centered = x.centered;
    return o;
}

lm_optimizer *lm_adagrad_(lm_adagrad_opts x) {
    lm_optimizer *o = opt_alloc(LM_OPT_ADAGRAD, x.schedule);
    if (!o) return NULL;
    SET_COMMON(o, x, 1e-3);
    o->initial_accumulator_value = or_default(x.initial_accumulator_value, 0.1);
    o->epsilon = or_default(x.epsilon, 1e-7);
    return o;
}

static const char *const kind_names[] = {
    [LM_OPT_SGD] = "sgd",         [LM_OPT_ADAM] = "adam",       [LM_OPT_ADAMW] = "adamw",
    [LM_OPT_RMSPROP] = "rmsprop", [LM_OPT_ADAGRAD] = "adagrad",
};

static bool name_eq(const char *a, const char *b) {
    for (; *a && *b; a++, b++)
        if (tolower((unsigned char)*a) != tolower((unsigned char)*b)) return false;
    return *a == *b;
}

lm_optimizer *lm_optimizer_from_name(const char *name) {
    if (!name) return NULL;
    if (name_eq(name, "sgd")) return lm_sgd();
    if (name_eq(name, "adam")) return lm_adam();
    if (name_eq(name, "adamw")) return lm_adamw();
    if (name_eq(name, "rmsprop")) return lm_rmsprop();
    if (name_eq(name, "adagrad")) return lm_adagrad();
    return NULL;
}

const char *lm_optimizer_name(const lm_optimizer *o) {
    return o ? kind_names[o->kind] : NULL;
}

double lm_optimizer_learning_rate(const lm_optimizer *o) {
    if (!o) return NAN;
    return o->schedule ? lm_schedule_value(o->schedule, o->iterations) : o->lr;
}

lm_status lm_optimizer_set_learning_rate(lm_optimizer *o, double lr) {
    if (!o || !(lr >= 0) || isinf(lr)) return LM_ERR_ARG;
    lm_schedule_free(o->schedule);
    o->schedule = NULL;
    o->lr = lr;
    return LM_OK;
}

int64_t lm_optimizer_iterations(const lm_optimizer *o) {
    return o ? o->iterations : -1;
}

static void free_state(lm_optimizer *o) {
    for (int k = 0; k < LM_OPT_MAX_SLOTS; k++) {
        lm_afree(o->slot[k]);
        o->slot[k] = NULL;
        o->slot_name[k] = NULL;
    }
    free(o->offsets);
    free(o->sizes);
    o->offsets = o->sizes = NULL;
    o->n_vars = o->n_slots = 0;
    o->n_params = 0;
}

void lm_optimizer_free(lm_optimizer *o) {
    if (!o) return;
    free_state(o);
    lm_schedule_free(o->schedule);
    free(o);
}

/* ---- validation ---- */

static lm_status bad(lm_ctx *ctx, const lm_optimizer *o, const char *what, const char *range,
                     double v) {
    return lm_fail(ctx, LM_ERR_ARG, "%s: %s must be %s, got %g", kind_names[o->kind], what, range,
                   v);
}

/* NaN fails every check below: each test is written as "in range". */
static lm_status validate(const lm_optimizer *o, lm_ctx *ctx) {
    if (!o->schedule && !(o->lr >= 0 && !isinf(o->lr)))
        return bad(ctx, o, "learning_rate", ">= 0", o->lr);
    lm_status st = lm_schedule_check(o->schedule, ctx, kind_names[o->kind]);
    if (st) return st;
    if (!(o->clipnorm >= 0)) return bad(ctx, o, "clipnorm", ">= 0", o->clipnorm);
    if (!(o->clipvalue >= 0)) return bad(ctx, o, "clipvalue", ">= 0", o->clipvalue);
    if (!(o->global_clipnorm >= 0))
        return bad(ctx, o, "global_clipnorm", ">= 0", o->global_clipnorm);
    if ((o->clipnorm > 0) + (o->clipvalue > 0) + (o->global_clipnorm > 0) > 1)
        return lm_fail(ctx, LM_ERR_ARG,
                       "%s: only one of clipnorm, clipvalue and global_clipnorm can be set, got "
                       "clipnorm=%g, clipvalue=%g, global_clipnorm=%g",
                       kind_names[o->kind], o->clipnorm, o->clipvalue, o->global_clipnorm);
    if (!(o->weight_decay >= 0 && !isinf(o->weight_decay)))
        return bad(ctx, o, "weight_decay", ">= 0", o->weight_decay);
    switch (o->kind) {
    case LM_OPT_SGD:
        if (!(o->momentum >= 0 && o->momentum <= 1))
            return bad(ctx, o, "momentum", "in [0, 1]", o->momentum);
        break;
    case LM_OPT_ADAM:
    case LM_OPT_ADAMW:
        if (!(o->beta_1 >= 0 && o->beta_1 < 1))
            return bad(ctx, o, "beta_1", "in [0, 1)", o->beta_1);
        if (!(o->beta_2 >= 0 && o->beta_2 < 1))
            return bad(ctx, o, "beta_2", "in [0, 1)", o->beta_2);
        if (!(o->epsilon >= 0 && !isinf(o->epsilon)))
            return bad(ctx, o, "epsilon", ">= 0", o->epsilon);
        break;
    case LM_OPT_RMSPROP:
        if (!(o->rho >= 0 && o->rho < 1)) return bad(ctx, o, "rho", "in [0, 1)", o->rho);
        if (!(o->momentum >= 0 && o->momentum <= 1))
            return bad(ctx, o, "momentum", "in [0, 1]", o->momentum);
        if (!(o->epsilon >= 0 && !isinf(o->epsilon)))
            return bad(ctx, o, "epsilon", ">= 0", o->epsilon);
        break;
    case LM_OPT_ADAGRAD:
        if (!(o->initial_accumulator_value >= 0 && !isinf(o->initial_accumulator_value)))
            return bad(ctx, o, "initial_accumulator_value", ">= 0", o->initial_accumulator_value);
        if (!(o->epsilon >= 0 && !isinf(o->epsilon)))
            return bad(ctx, o, "epsilon", ">= 0", o->epsilon);
        break;
    }
    return LM_OK;
}

/* Slot names in Keras's variable creation order. */
static int slot_names(const lm_optimizer *o, const char **names) {
    int n = 0;
    switch (o->kind) {
    case LM_OPT_SGD:
        if (o->momentum != 0) names[n++] = "momentum";
        break;
    case LM_OPT_ADAM:
    case LM_OPT_ADAMW:
        names[n++] = "momentum";
        names[n++] = "velocity";
        if (o->amsgrad) names[n++] = "velocity_hat";
        break;
    case LM_OPT_RMSPROP:
        names[n++] = "velocity";
        if (o->momentum > 0) names[n++] = "momentum";
        if (o->centered) names[n++] = "average_gradient";
        break;
    case LM_OPT_ADAGRAD:
        names[n++] = "accumulator";
        break;
    }
    return n;
}

lm_status lm_optimizer_build(lm_optimizer *o, lm_ctx *ctx, int n_vars, const int64_t *sizes) {
    if (!o) return lm_fail(ctx, LM_ERR_ARG, "lm_optimizer_build: optimizer is NULL");
    lm_status st = validate(o, ctx);
    if (st) return st;
    if (n_vars < 0 || (n_vars > 0 && !sizes))
        return lm_fail(ctx, LM_ERR_ARG,
                       "%s: build needs n_vars >= 0 and their sizes, got n_vars=%d%s",
                       kind_names[o->kind], n_vars, sizes ? "" : " and NULL sizes");
    int64_t total = 0;
    for (int i = 0; i < n_vars; i++) {
        if (sizes[i] < 0 || sizes[i] > (INT64_MAX / 4 - total))
            return lm_fail(ctx, LM_ERR_ARG, "%s: variable %d has invalid size %lld",
                           kind_names[o->kind], i, (long long)sizes[i]);
        total += sizes[i];
    }
    o->isa = ctx ? ctx->isa : LM_ISA_GENERIC;
    /* Same variables again (a recompile): keep the state and iterations. */
    if (o->offsets && o->n_vars == n_vars &&
        (n_vars == 0 || !memcmp(o->sizes, sizes, sizeof *sizes * (size_t)n_vars)))
        return LM_OK;

    /* Allocate everything first so a failure leaves the old state intact. */
    size_t nv = (size_t)(n_vars ? n_vars : 1);
    int64_t *offs = malloc(nv * sizeof *offs), *szs = malloc(nv * sizeof *szs);
    const char *names[LM_OPT_MAX_SLOTS];
    int ns = slot_names(o, names);
    float *slots[LM_OPT_MAX_SLOTS] = {0};
    bool ok = offs && szs;
    for (int k = 0; k < ns && ok; k++) ok = (slots[k] = lm_aalloc((size_t)total * sizeof(float)));
    if (!ok) {
        free(offs);
        free(szs);
        for (int k = 0; k < ns; k++) lm_afree(slots[k]);
        return lm_fail(ctx, LM_ERR_OOM, "%s: cannot allocate state for %lld parameters",
                       kind_names[o->kind], (long long)total);
    }
    int64_t off = 0;
    for (int i = 0; i < n_vars; i++) {
        offs[i] = off;
        szs[i] = sizes[i];
        off += sizes[i];
    }
    float fill = o->kind == LM_OPT_ADAGRAD ? (float)o->initial_accumulator_value : 0.0f;
    for (int k = 0; k < ns; k++) {
        if (fill == 0.0f)
            memset(slots[k], 0, (size_t)total * sizeof(float));
        else
            for (int64_t j = 0; j < total; j++) slots[k][j] = fill;
    }
    free_state(o);
    o->n_vars = n_vars;
    o->offsets = offs;
    o->sizes = szs;
    o->n_params = total;
    o->n_slots = ns;
    for (int k = 0; k < ns; k++) {
        o->slot[k] = slots[k];
        o->slot_name[k] = names[k];
    }
    /* Fresh state: Adam's bias correction must restart with it. */
    o->iterations = 0;
    return LM_OK;
}

/* ---- step ---- */

typedef void (*rule_fn)(lm_optimizer *, const lm_opt_step *, float *, const float *, int64_t,
                        int64_t);

lm_status lm_optimizer_step(lm_optimizer *o, float *params, float *grads, int nthreads) {
    if (!o) return LM_ERR_ARG;
    if (!o->offsets) return LM_ERR_STATE; /* never built */
    if (o->n_params > 0 && (!params || !grads)) return LM_ERR_ARG;

    /* Keras evaluates the schedule at the iteration count before the step. */
    double lr = lm_optimizer_learning_rate(o);
    lm_opt_step s = {
        .lr = (float)lr,
        .gscale = 1.0f,
        .clipvalue = o->clipvalue > 0 ? (float)o->clipvalue : INFINITY,
        .wd = (float)o->weight_decay,
        .has_wd = o->weight_decay > 0,
        .momentum = (float)o->momentum,
        .epsilon = (float)o->epsilon,
        .nthreads = nthreads > 0 ? nthreads : 1,
        .blocks = o->isa == LM_ISA_AVX512 && lm_rule_blocks_avx512.adam ? &lm_rule_blocks_avx512
                  : o->isa >= LM_ISA_AVX2 && lm_rule_blocks_avx2.adam   ? &lm_rule_blocks_avx2
                                                                        : &lm_rule_blocks_generic,
    };
    rule_fn rule = NULL;
    switch (o->kind) {
    case LM_OPT_SGD:
        rule = lm_rule_sgd;
        break;
    case LM_OPT_ADAM:
    case LM_OPT_ADAMW: {
        /* Bias correction once per step, in double, of the betas rounded to
         * float as Keras casts them: 1 - (float)0.999 is 1.3e-5 off 0.001,
         * which moves the first steps by ~1e-6 relative otherwise. */
        double t = (double)(o->iterations + 1);
        double b1p = pow((double)(float)o->beta_1, t), b2p = pow((double)(float)o->beta_2, t);
        s.alpha = (float)((double)s.lr * sqrt(1.0 - b2p) / (1.0 - b1p));
        s.one_m_b1 = (float)(1.0 - o->beta_1);
        s.one_m_b2 = (float)(1.0 - o->beta_2);
        rule = lm_rule_adam;
        break;
    }
    case LM_OPT_RMSPROP:
        s.rho = (float)o->rho;
        s.one_m_rho = (float)(1.0 - o->rho);
        rule = lm_rule_rmsprop;
        break;
    case LM_OPT_ADAGRAD:
        rule = lm_rule_adagrad;
        break;
    }

    if (o->clipnorm > 0) {
        /* Keras: g * clipnorm / max(||g||, clipnorm), per variable. */
        for (int i = 0; i < o->n_vars; i++) {
            int64_t off = o->offsets[i], n = o->sizes[i];
            if (n == 0) continue;
            double norm = sqrt(lm_opt_sumsq(grads + off, n, s.nthreads));
            s.gscale = norm > o->clipnorm ? (float)(o->clipnorm / norm) : isnan(norm) ? NAN : 1.0f;
            rule(o, &s, params, grads, off, n);
        }
    } else {
        if (o->global_clipnorm > 0) {
            /* Keras: scale = c * min(1/norm, 1/c), NaN when the norm is not finite. */
            double norm = sqrt(lm_opt_sumsq(grads, o->n_params, s.nthreads));
            double c = o->global_clipnorm;
            s.gscale = isfinite(norm) ? (float)(c * fmin(1.0 / norm, 1.0 / c)) : NAN;
        }
        rule(o, &s, params, grads, 0, o->n_params);
    }
    o->iterations++;
    return LM_OK;
}
