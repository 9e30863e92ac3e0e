/* Unit tests of the optimizers and schedules: defaults, names, accessors,
 * one step of every rule against the formula in double, clipping, weight
 * decay, schedules at chosen steps, validation messages, rebuilds, zero-size
 * variables and threaded updates. Keras parity is in test_parity_optim.c. */
#include "lmtest.h"
#include <lamina/lamina.h>
#include <lamina/optimizers.h>
#include "optim/optim.h"

static lm_ctx *ctx;

#define TOL 2e-6

static void test_defaults(void) {
    lm_optimizer *o = lm_sgd();
    CHECK(!strcmp(lm_optimizer_name(o), "sgd"));
    CHECK(o->lr == 0.01 && o->momentum == 0 && !o->nesterov && o->weight_decay == 0);
    lm_optimizer_free(o);

    o = lm_adam();
    CHECK(!strcmp(lm_optimizer_name(o), "adam"));
    CHECK(o->lr == 1e-3 && o->beta_1 == 0.9 && o->beta_2 == 0.999 && o->epsilon == 1e-7);
    CHECK(!o->amsgrad && o->weight_decay == 0);
    lm_optimizer_free(o);

    o = lm_adamw();
    CHECK(!strcmp(lm_optimizer_name(o), "adamw"));
    CHECK(o->lr == 1e-3 && o->weight_decay == 0.004 && o->beta_2 == 0.999);
    lm_optimizer_free(o);
    o = lm_adamw(.weight_decay = 0.1);
    CHECK(o->weight_decay == 0.1);
    lm_optimizer_free(o);

    o = lm_rmsprop();
    CHECK(!strcmp(lm_optimizer_name(o), "rmsprop"));
    CHECK(o->lr == 1e-3 && o->rho == 0.9 && o->momentum == 0 && o->epsilon == 1e-7);
    CHECK(!o->centered);
    lm_optimizer_free(o);

    o = lm_adagrad();
    CHECK(!strcmp(lm_optimizer_name(o), "adagrad"));
    CHECK(o->lr == 1e-3 && o->initial_accumulator_value == 0.1 && o->epsilon == 1e-7);
    lm_optimizer_free(o);

    o = lm_sgd(.learning_rate = 0.5, .momentum = 0.9, .nesterov = true, .clipnorm = 2);
    CHECK(o->lr == 0.5 && o->momentum == 0.9 && o->nesterov && o->clipnorm == 2);
    lm_optimizer_free(o);
}

static void test_from_name(void) {
    const char *names[] = {"sgd", "adam", "adamw", "rmsprop", "adagrad"};
    const char *spelled[] = {"SGD", "Adam", "AdamW", "RMSprop", "ADAGRAD"};
    for (int i = 0; i < 5; i++) {
        lm_optimizer *o = lm_optimizer_from_name(spelled[i]);
        CHECK(o && !strcmp(lm_optimizer_name(o), names[i]));
        lm_optimizer_free(o);
    }
    CHECK(lm_optimizer_from_name("adamax") == NULL);
    CHECK(lm_optimizer_from_name("ada") == NULL);
    CHECK(lm_optimizer_from_name("") == NULL);
    CHECK(lm_optimizer_from_name(NULL) == NULL);
}

static void test_accessors_and_null(void) {
    lm_optimizer *o = lm_adam(.learning_rate = 0.01);
    CHECK(lm_optimizer_learning_rate(o) == 0.01);
    CHECK(lm_optimizer_iterations(o) == 0);
    CHECK_STATUS(lm_optimizer_set_learning_rate(o, 0.5), LM_OK);
    CHECK(lm_optimizer_learning_rate(o) == 0.5);
    CHECK_STATUS(lm_optimizer_set_learning_rate(o, 0), LM_OK); /* a frozen step is valid */
    CHECK_STATUS(lm_optimizer_set_learning_rate(o, -1), LM_ERR_ARG);
    CHECK_STATUS(lm_optimizer_set_learning_rate(o, NAN), LM_ERR_ARG);
    CHECK(lm_optimizer_learning_rate(o) == 0);

    float p[2] = {1, 2}, g[2] = {1, 1};
    CHECK_STATUS(lm_optimizer_step(o, p, g, 1), LM_ERR_STATE); /* not built */
    int64_t sz[] = {2};
    CHECK_STATUS(lm_optimizer_build(o, ctx, 1, sz), LM_OK);
    CHECK_STATUS(lm_optimizer_step(o, NULL, g, 1), LM_ERR_ARG);
    CHECK_STATUS(lm_optimizer_step(o, p, g, 1), LM_OK);
    CHECK(lm_optimizer_iterations(o) == 1);
    lm_optimizer_free(o);

    /* Setting a constant drops the schedule. */
    o = lm_sgd(.schedule = lm_exponential_decay(1.0, 1, 0.5, false));
    CHECK(lm_optimizer_learning_rate(o) == 1.0);
    CHECK_STATUS(lm_optimizer_set_learning_rate(o, 0.25), LM_OK);
    CHECK(o->schedule == NULL && lm_optimizer_learning_rate(o) == 0.25);
    lm_optimizer_free(o);

    CHECK(lm_optimizer_name(NULL) == NULL);
    CHECK(isnan(lm_optimizer_learning_rate(NULL)));
    CHECK(lm_optimizer_iterations(NULL) == -1);
    CHECK_STATUS(lm_optimizer_set_learning_rate(NULL, 0.1), LM_ERR_ARG);
    CHECK_STATUS(lm_optimizer_build(NULL, ctx, 1, sz), LM_ERR_ARG);
    CHECK_CONTAINS(lm_ctx_error(ctx), "NULL");
    CHECK_STATUS(lm_optimizer_step(NULL, p, g, 1), LM_ERR_ARG);
    lm_optimizer_free(NULL);
    lm_schedule_free(NULL);
    CHECK(isnan(lm_schedule_value(NULL, 0)));
}

/* ---- one step per rule against the formula ---- */

#define N 5
static const float W0[N] = {0.5f, -1.0f, 2.0f, 0.0f, -0.25f};
static const float G0[N] = {0.1f, -0.4f, 1.5f, 0.0f, -2.0f};

/* Runs `steps` steps with gradient G0 (two variables: 3 and 2 elements). */
static void run(lm_optimizer *o, float *p, int steps) {
    int64_t sz[] = {3, 2};
    memcpy(p, W0, sizeof W0);
    CHECK_STATUS(lm_optimizer_build(o, ctx, 2, sz), LM_OK);
    for (int t = 0; t < steps; t++) {
        float g[N];
        memcpy(g, G0, sizeof g);
        CHECK_STATUS(lm_optimizer_step(o, p, g, 1), LM_OK);
    }
}

static void test_sgd(void) {
    float p[N];
    lm_optimizer *o = lm_sgd(.learning_rate = 0.1);
    run(o, p, 1);
    CHECK(o->n_slots == 0);
    for (int i = 0; i < N; i++) CHECK_NEAR(p[i], W0[i] - 0.1 * G0[i], TOL);
    lm_optimizer_free(o);

    /* Momentum, two steps: m1 = -lr g, m2 = mu m1 - lr g. */
    o = lm_sgd(.learning_rate = 0.1, .momentum = 0.9);
    run(o, p, 2);
    CHECK(o->n_slots == 1 && !strcmp(o->slot_name[0], "momentum"));
    for (int i = 0; i < N; i++) {
        double m1 = -0.1 * G0[i], m2 = 0.9 * m1 - 0.1 * G0[i];
        CHECK_NEAR(p[i], W0[i] + m1 + m2, TOL);
        CHECK_NEAR(o->slot[0][i], m2, TOL);
    }
    lm_optimizer_free(o);

    o = lm_sgd(.learning_rate = 0.1, .momentum = 0.9, .nesterov = true);
    run(o, p, 2);
    for (int i = 0; i < N; i++) {
        double m1 = -0.1 * G0[i], m2 = 0.9 * m1 - 0.1 * G0[i];
        double w = W0[i] + (0.9 * m1 - 0.1 * G0[i]);
        w += 0.9 * m2 - 0.1 * G0[i];
        CHECK_NEAR(p[i], w, TOL);
    }
    lm_optimizer_free(o);
}

static void test_adam(void) {
    for (int ams = 0; ams < 2; ams++) {
        float p[N];
        lm_optimizer *o = lm_adam(.learning_rate = 0.01, .amsgrad = ams);
        run(o, p, 2);
        CHECK(o->n_slots == 2 + ams);
        CHECK(!strcmp(o->slot_name[0], "momentum") && !strcmp(o->slot_name[1], "velocity"));
        if (ams) CHECK(!strcmp(o->slot_name[2], "velocity_hat"));
        for (int i = 0; i < N; i++) {
            double w = W0[i], m = 0, v = 0, g = G0[i];
            for (int t = 1; t <= 2; t++) {
                double a = 0.01 * sqrt(1 - pow(0.999, t)) / (1 - pow(0.9, t));
                m += (g - m) * 0.1;
                v += (g * g - v) * 0.001;
                w -= a * m / (sqrt(v) + 1e-7);
            }
            CHECK_NEAR(p[i], w, TOL);
            CHECK_NEAR(o->slot[0][i], m, TOL);
            CHECK_NEAR(o->slot[1][i], v, TOL);
        }
        lm_optimizer_free(o);
    }
    /* AdamW = Adam after w -= w * wd * lr. */
    float p[N];
    lm_optimizer *o = lm_adamw(.learning_rate = 0.01, .weight_decay = 0.5);
    run(o, p, 1);
    for (int i = 0; i < N; i++) {
        double g = G0[i], w = W0[i] * (1 - 0.5 * 0.01);
        double m = 0.1 * g, v = 0.001 * g * g, a = 0.01 * sqrt(0.001) / 0.1;
        CHECK_NEAR(p[i], w - a * m / (sqrt(v) + 1e-7), TOL);
    }
    lm_optimizer_free(o);
}

static void test_rmsprop(void) {
    for (int c = 0; c < 2; c++)
        for (int mo = 0; mo < 2; mo++) {
            float p[N];
            lm_optimizer *o =
                lm_rmsprop(.learning_rate = 0.01, .centered = c, .momentum = mo ? 0.5 : 0);
            run(o, p, 2);
            CHECK(o->n_slots == 1 + c + mo);
            for (int i = 0; i < N; i++) {
                double w = W0[i], v = 0, a = 0, m = 0, g = G0[i];
                for (int t = 0; t < 2; t++) {
                    v = 0.9 * v + 0.1 * g * g;
                    a = 0.9 * a + 0.1 * g;
                    double inc = 0.01 * g / sqrt(v - (c ? a * a : 0) + 1e-7);
                    if (mo) inc = m = 0.5 * m + inc;
                    w -= inc;
                }
                /* The centered denominator cancels for constant g: looser. */
                CHECK_NEAR(p[i], w, c ? 1e-4 : TOL);
                CHECK_NEAR(o->slot[0][i], v, TOL);
            }
            lm_optimizer_free(o);
        }
}

static void test_adagrad(void) {
    float p[N];
    lm_optimizer *o = lm_adagrad(.learning_rate = 0.1);
    run(o, p, 2);
    CHECK(o->n_slots == 1 && !strcmp(o->slot_name[0], "accumulator"));
    for (int i = 0; i < N; i++) {
        double w = W0[i], acc = 0.1, g = G0[i];
        for (int t = 0; t < 2; t++) {
            acc += g * g;
            w -= 0.1 * g / sqrt(acc + 1e-7);
        }
        CHECK_NEAR(p[i], w, TOL);
        CHECK_NEAR(o->slot[0][i], acc, TOL);
    }
    lm_optimizer_free(o);
}

/* ---- clipping and weight decay ---- */

static void test_clipping(void) {
    float p[N];
    /* Per variable: the first (0.1, -0.4, 1.5) has norm 1.5556, the second
     * (0, -2) norm 2; clipnorm 1.8 scales the second only. */
    lm_optimizer *o = lm_sgd(.learning_rate = 1, .clipnorm = 1.8);
    run(o, p, 1);
    for (int i = 0; i < N; i++) {
        double g = i < 3 ? G0[i] : G0[i] * 1.8 / 2.0;
        CHECK_NEAR(p[i], W0[i] - g, TOL);
    }
    lm_optimizer_free(o);

    /* Global: all five together, norm sqrt(0.01 + 0.16 + 2.25 + 4) = 2.5338. */
    o = lm_sgd(.learning_rate = 1, .global_clipnorm = 1);
    run(o, p, 1);
    double gn = sqrt(0.01 + 0.16 + 2.25 + 4.0);
    for (int i = 0; i < N; i++) CHECK_NEAR(p[i], W0[i] - G0[i] / gn, TOL);
    lm_optimizer_free(o);

    /* Global norm below the limit: unchanged. */
    o = lm_sgd(.learning_rate = 1, .global_clipnorm = 10);
    run(o, p, 1);
    for (int i = 0; i < N; i++) CHECK_NEAR(p[i], W0[i] - G0[i], TOL);
    lm_optimizer_free(o);

    o = lm_sgd(.learning_rate = 1, .clipvalue = 0.5);
    run(o, p, 1);
    for (int i = 0; i < N; i++) {
        double g = G0[i] > 0.5 ? 0.5 : G0[i] < -0.5 ? -0.5 : G0[i];
        CHECK_NEAR(p[i], W0[i] - g, TOL);
    }
    lm_optimizer_free(o);

    /* NaN gradients stay NaN through clipvalue (as jnp.clip). */
    o = lm_sgd(.learning_rate = 1, .clipvalue = 0.5);
    int64_t sz[] = {2};
    float q[2] = {1, 1}, g[2] = {NAN, 3};
    CHECK_STATUS(lm_optimizer_build(o, ctx, 1, sz), LM_OK);
    CHECK_STATUS(lm_optimizer_step(o, q, g, 1), LM_OK);
    CHECK(isnan(q[0]) && q[1] == 0.5f);
    lm_optimizer_free(o);
}

static void test_weight_decay(void) {
    float p[N];
    /* Decoupled: w -= w * wd * lr before the update, with the step's lr. */
    lm_optimizer *o = lm_sgd(.learning_rate = 0.1, .weight_decay = 0.2);
    run(o, p, 1);
    for (int i = 0; i < N; i++) CHECK_NEAR(p[i], W0[i] * (1 - 0.02) - 0.1 * G0[i], TOL);
    lm_optimizer_free(o);

    o = lm_rmsprop(.learning_rate = 0.01, .weight_decay = 0.1);
    run(o, p, 1);
    for (int i = 0; i < N; i++) {
        double g = G0[i];
        CHECK_NEAR(p[i], W0[i] * (1 - 0.001) - 0.01 * g / sqrt(0.1 * g * g + 1e-7), TOL);
    }
    lm_optimizer_free(o);

    o = lm_adagrad(.learning_rate = 0.1, .weight_decay = 0.1);
    run(o, p, 1);
    for (int i = 0; i < N; i++) {
        double g = G0[i];
        CHECK_NEAR(p[i], W0[i] * (1 - 0.01) - 0.1 * g / sqrt(0.1 + g * g + 1e-7), TOL);
    }
    lm_optimizer_free(o);

    /* With a schedule, the decay uses the scheduled rate of the step. */
    o = lm_sgd(.schedule = lm_exponential_decay(0.1, 1, 0.5, true), .weight_decay = 1);
    run(o, p, 2);
    for (int i = 0; i < N; i++) {
        double w = W0[i] * (1 - 0.1) - 0.1 * G0[i];
        w = w * (1 - 0.05) - 0.05 * G0[i];
        CHECK_NEAR(p[i], w, TOL);
    }
    lm_optimizer_free(o);
}

/* ---- schedules ---- */

static void test_schedules(void) {
    lm_schedule *s = lm_exponential_decay(0.1, 10, 0.5, false);
    CHECK_NEAR(lm_schedule_value(s, 0), 0.1, 1e-12);
    CHECK_NEAR(lm_schedule_value(s, 5), 0.1 * pow(0.5, 0.5), 1e-12);
    CHECK_NEAR(lm_schedule_value(s, 25), 0.1 * pow(0.5, 2.5), 1e-12);
    lm_schedule_free(s);
    s = lm_exponential_decay(0.1, 10, 0.5, true);
    CHECK_NEAR(lm_schedule_value(s, 9), 0.1, 1e-12);
    CHECK_NEAR(lm_schedule_value(s, 10), 0.05, 1e-12);
    CHECK_NEAR(lm_schedule_value(s, 25), 0.025, 1e-12);
    lm_schedule_free(s);

    int64_t b[] = {10, 20};
    double v[] = {1.0, 0.5, 0.1};
    s = lm_piecewise_constant_decay(2, b, v);
    CHECK(lm_schedule_value(s, 0) == 1.0 && lm_schedule_value(s, 10) == 1.0);
    CHECK(lm_schedule_value(s, 11) == 0.5 && lm_schedule_value(s, 20) == 0.5);
    CHECK(lm_schedule_value(s, 21) == 0.1 && lm_schedule_value(s, 1000) == 0.1);
    lm_schedule_free(s);
    s = lm_piecewise_constant_decay(0, NULL, v);
    CHECK(lm_schedule_value(s, 5) == 1.0);
    lm_schedule_free(s);

    s = lm_cosine_decay(0.2, 100, 0.1);
    CHECK_NEAR(lm_schedule_value(s, 0), 0.2, 1e-12);
    CHECK_NEAR(lm_schedule_value(s, 50), 0.2 * (0.9 * 0.5 + 0.1), 1e-12);
    CHECK_NEAR(lm_schedule_value(s, 25), 0.2 * (0.9 * 0.5 * (1 + cos(3.14159265358979 / 4)) + 0.1),
               1e-12);
    CHECK_NEAR(lm_schedule_value(s, 100), 0.02, 1e-12);
    CHECK_NEAR(lm_schedule_value(s, 500), 0.02, 1e-12); /* held after decay_steps */
    lm_schedule_free(s);

    /* The optimizer evaluates it at the iteration count before the step. */
    lm_optimizer *o = lm_sgd(.schedule = lm_piecewise_constant_decay(2, b, v));
    int64_t sz[] = {1};
    float p[1] = {0}, g[1] = {1};
    CHECK_STATUS(lm_optimizer_build(o, ctx, 1, sz), LM_OK);
    double sum = 0;
    for (int t = 0; t < 25; t++) {
        CHECK(lm_optimizer_learning_rate(o) == lm_schedule_value(o->schedule, t));
        sum += (float)lm_schedule_value(o->schedule, t);
        g[0] = 1;
        CHECK_STATUS(lm_optimizer_step(o, p, g, 1), LM_OK);
    }
    CHECK_NEAR(p[0], -sum, 1e-5); /* 11 * 1.0 + 10 * 0.5 + 4 * 0.1 */
    CHECK_NEAR(sum, 16.4, 1e-6);
    lm_optimizer_free(o);
}

/* ---- validation ---- */

static void expect_build_error(lm_optimizer *o, const char *what, const char *value) {
    int64_t sz[] = {4};
    lm_ctx_clear_error(ctx);
    CHECK_STATUS(lm_optimizer_build(o, ctx, 1, sz), LM_ERR_ARG);
    CHECK_CONTAINS(lm_ctx_error(ctx), lm_optimizer_name(o));
    CHECK_CONTAINS(lm_ctx_error(ctx), what);
    if (value) CHECK_CONTAINS(lm_ctx_error(ctx), value);
    lm_optimizer_free(o);
}

static void test_errors(void) {
    expect_build_error(lm_sgd(.learning_rate = -0.1), "learning_rate", "-0.1");
    expect_build_error(lm_adam(.learning_rate = NAN), "learning_rate", "nan");
    expect_build_error(lm_adam(.beta_1 = 1.0), "beta_1", "1");
    expect_build_error(lm_adamw(.beta_2 = -0.5), "beta_2", "-0.5");
    expect_build_error(lm_adam(.epsilon = -1e-3), "epsilon", "-0.001");
    expect_build_error(lm_sgd(.momentum = 1.5), "momentum", "1.5");
    expect_build_error(lm_sgd(.momentum = -0.5), "momentum", "-0.5");
    expect_build_error(lm_rmsprop(.rho = 1.0), "rho", "1");
    expect_build_error(lm_rmsprop(.momentum = -1), "momentum", "-1");
    expect_build_error(lm_adagrad(.initial_accumulator_value = -0.1), "initial_accumulator_value",
                       "-0.1");
    expect_build_error(lm_adagrad(.epsilon = -1), "epsilon", NULL);
    expect_build_error(lm_adam(.weight_decay = -0.01), "weight_decay", "-0.01");
    expect_build_error(lm_sgd(.clipnorm = -1), "clipnorm", "-1");
    expect_build_error(lm_sgd(.clipvalue = -1), "clipvalue", "-1");
    expect_build_error(lm_sgd(.global_clipnorm = -1), "global_clipnorm", "-1");
    expect_build_error(lm_sgd(.clipnorm = 1, .clipvalue = 1), "only one of clipnorm", NULL);
    expect_build_error(lm_adam(.schedule = lm_exponential_decay(0.1, 0, 0.5, false)), "decay_steps",
                       "0");
    expect_build_error(lm_adam(.schedule = lm_exponential_decay(0.1, 10, -0.5, false)),
                       "decay_rate", "-0.5");
    expect_build_error(lm_adam(.schedule = lm_cosine_decay(-0.1, 10, 0)), "initial_learning_rate",
                       "-0.1");
    expect_build_error(lm_adam(.schedule = lm_cosine_decay(0.1, 10, 2)), "alpha", "2");
    int64_t b[] = {10, 5};
    double v[] = {1, 0.5, 0.1}, vneg[] = {1, -0.5, 0.1};
    expect_build_error(lm_sgd(.schedule = lm_piecewise_constant_decay(2, b, v)),
                       "boundaries must increase", NULL);
    int64_t b2[] = {5, 10};
    expect_build_error(lm_sgd(.schedule = lm_piecewise_constant_decay(2, b2, vneg)), "values[1]",
                       "-0.5");
    expect_build_error(lm_sgd(.schedule = lm_piecewise_constant_decay(2, NULL, v)),
                       "PiecewiseConstantDecay", NULL);
    /* An invalid schedule reads as NaN. */
    lm_schedule *s = lm_exponential_decay(0.1, 0, 0.5, false);
    CHECK(isnan(lm_schedule_value(s, 1)));
    lm_schedule_free(s);

    /* Bad sizes. */
    lm_optimizer *o = lm_adam();
    int64_t bad[] = {3, -1};
    CHECK_STATUS(lm_optimizer_build(o, ctx, 2, bad), LM_ERR_ARG);
    CHECK_CONTAINS(lm_ctx_error(ctx), "variable 1");
    CHECK_STATUS(lm_optimizer_build(o, ctx, -1, bad), LM_ERR_ARG);
    CHECK_STATUS(lm_optimizer_build(o, ctx, 2, NULL), LM_ERR_ARG);
    /* A failed build leaves the optimizer unbuilt. */
    float p[1] = {0}, g[1] = {1};
    CHECK_STATUS(lm_optimizer_step(o, p, g, 1), LM_ERR_STATE);
    lm_optimizer_free(o);
}

/* ---- state across builds, zero sizes, threads ---- */

static void test_rebuild(void) {
    lm_optimizer *o = lm_adam(.learning_rate = 0.1);
    float p[N];
    run(o, p, 2);
    float m0 = o->slot[0][0];
    float *slot = o->slot[0];
    int64_t same[] = {3, 2};
    CHECK_STATUS(lm_optimizer_build(o, ctx, 2, same), LM_OK);
    CHECK(o->iterations == 2 && o->slot[0] == slot && o->slot[0][0] == m0);

    /* Two more steps after the rebuild equal four uninterrupted steps. */
    float q[N];
    for (int t = 0; t < 2; t++) {
        float g[N];
        memcpy(g, G0, sizeof g);
        CHECK_STATUS(lm_optimizer_step(o, p, g, 1), LM_OK);
    }
    lm_optimizer *o4 = lm_adam(.learning_rate = 0.1);
    run(o4, q, 4);
    for (int i = 0; i < N; i++) CHECK(p[i] == q[i]);
    lm_optimizer_free(o4);

    /* Different sizes: fresh state and iterations. */
    int64_t other[] = {5};
    CHECK_STATUS(lm_optimizer_build(o, ctx, 1, other), LM_OK);
    CHECK(o->iterations == 0 && o->n_vars == 1 && o->n_params == 5);
    for (int i = 0; i < N; i++) CHECK(o->slot[0][i] == 0 && o->slot[1][i] == 0);
    lm_optimizer_free(o);

    /* Adagrad starts from initial_accumulator_value. */
    o = lm_adagrad(.initial_accumulator_value = 0.25);
    CHECK_STATUS(lm_optimizer_build(o, ctx, 1, other), LM_OK);
    for (int i = 0; i < 5; i++) CHECK(o->slot[0][i] == 0.25f);
    lm_optimizer_free(o);
}

static void test_zero_size(void) {
    /* A zero-size variable between two others, with per-variable clipping. */
    lm_optimizer *o = lm_adam(.learning_rate = 0.1, .clipnorm = 1);
    int64_t sz[] = {2, 0, 1};
    CHECK_STATUS(lm_optimizer_build(o, ctx, 3, sz), LM_OK);
    CHECK(o->n_params == 3 && o->offsets[1] == 2 && o->offsets[2] == 2);
    float p[3] = {1, 2, 3}, g[3] = {0.5f, 0.5f, -0.5f};
    CHECK_STATUS(lm_optimizer_step(o, p, g, 1), LM_OK);
    for (int i = 0; i < 3; i++) CHECK(isfinite(p[i]));
    CHECK_NEAR(p[2], 3.1, 1e-5);
    lm_optimizer_free(o);

    /* No variables at all. */
    o = lm_rmsprop(.global_clipnorm = 1);
    CHECK_STATUS(lm_optimizer_build(o, ctx, 0, NULL), LM_OK);
    CHECK_STATUS(lm_optimizer_step(o, NULL, NULL, 1), LM_OK);
    CHECK(lm_optimizer_iterations(o) == 1);
    lm_optimizer_free(o);

    /* Zero gradient under clipnorm and global_clipnorm: no NaN. */
    o = lm_sgd(.global_clipnorm = 1);
    int64_t s1[] = {2};
    float q[2] = {1, 2}, z[2] = {0, 0};
    CHECK_STATUS(lm_optimizer_build(o, ctx, 1, s1), LM_OK);
    CHECK_STATUS(lm_optimizer_step(o, q, z, 1), LM_OK);
    CHECK(q[0] == 1 && q[1] == 2);
    lm_optimizer_free(o);
}

/* Above the threading threshold, results do not depend on the thread count. */
static void test_threads(void) {
    const int64_t n = 300001;
    float *p1 = malloc(sizeof(float) * n), *p4 = malloc(sizeof(float) * n);
    float *g = malloc(sizeof(float) * n), *gc = malloc(sizeof(float) * n);
    for (int64_t i = 0; i < n; i++) {
        p1[i] = p4[i] = (float)((i % 97) - 48) / 50.0f;
        g[i] = (float)((i * 7919) % 101 - 50) / 25.0f;
    }
    lm_optimizer *make[3][2];
    for (int k = 0; k < 2; k++) {
        make[0][k] = lm_adam(.amsgrad = true, .global_clipnorm = 100);
        make[1][k] = lm_rmsprop(.centered = true, .momentum = 0.5, .weight_decay = 0.1);
        make[2][k] = lm_sgd(.momentum = 0.9, .nesterov = true, .clipnorm = 50);
    }
    int64_t sz[] = {n - 1000, 1000};
    for (int r = 0; r < 3; r++) {
        CHECK_STATUS(lm_optimizer_build(make[r][0], ctx, 2, sz), LM_OK);
        CHECK_STATUS(lm_optimizer_build(make[r][1], ctx, 2, sz), LM_OK);
        for (int t = 0; t < 2; t++) {
            memcpy(gc, g, sizeof(float) * n);
            CHECK_STATUS(lm_optimizer_step(make[r][0], p1, gc, 1), LM_OK);
            memcpy(gc, g, sizeof(float) * n);
            CHECK_STATUS(lm_optimizer_step(make[r][1], p4, gc, 4), LM_OK);
        }
        /* The norm sums in a different order, so allow rounding there. */
        double worst = 0;
        for (int64_t i = 0; i < n; i++) {
            double e = fabs((double)p1[i] - p4[i]);
            if (!(e <= worst)) worst = e;
        }
        CHECK_MSG(worst <= 1e-6, "rule %d: threads change the result by %g", r, worst);
        lm_optimizer_free(make[r][0]);
        lm_optimizer_free(make[r][1]);
    }
    free(p1);
    free(p4);
    free(g);
    free(gc);
}

/* The update loops compiled for AVX2 and AVX-512 round exactly as the
 * portable ones: a model trains to the same weights on any x86 CPU. */
static void test_isas(void) {
    const int64_t n = 5003; /* not a multiple of any vector width or block */
    const char *isas[] = {"avx2", "avx512"};
    float *ref = malloc(sizeof(float) * n), *p = malloc(sizeof(float) * n);
    float *g = malloc(sizeof(float) * n), *gc = malloc(sizeof(float) * n);
    lm_ctx *c0 = lm_ctx_new(), *c2 = lm_ctx_new();
    CHECK_STATUS(lm_ctx_set_isa(c0, "generic"), LM_OK);
    for (int r = 0; r < 4; r++) {
        for (int v = -1; v < 2; v++) {
            if (v >= 0 && lm_ctx_set_isa(c2, isas[v]) != LM_OK) continue; /* CPU lacks it */
            lm_ctx *c = v < 0 ? c0 : c2;
            lm_optimizer *o = r == 0   ? lm_adam(.amsgrad = true, .weight_decay = 0.01)
                              : r == 1 ? lm_rmsprop(.centered = true, .momentum = 0.5)
                              : r == 2 ? lm_adagrad()
                                       : lm_sgd(.momentum = 0.9, .nesterov = true, .clipvalue = 1);
            float *w = v < 0 ? ref : p;
            for (int64_t i = 0; i < n; i++) {
                w[i] = (float)((i % 97) - 48) / 50.0f;
                g[i] = (float)((i * 7919) % 101 - 50) / 25.0f;
            }
            CHECK_STATUS(lm_optimizer_build(o, c, 1, &n), LM_OK);
            for (int t = 0; t < 3; t++) {
                memcpy(gc, g, sizeof(float) * n);
                CHECK_STATUS(lm_optimizer_step(o, w, gc, 1), LM_OK);
            }
            if (v >= 0)
                CHECK_MSG(!memcmp(ref, p, sizeof(float) * n), "rule %d: %s loops round differently",
                          r, isas[v]);
            lm_optimizer_free(o);
        }
    }
    lm_ctx_free(c0);
    lm_ctx_free(c2);
    free(ref);
    free(p);
    free(g);
    free(gc);
}

int main(void) {
    ctx = lm_ctx_new();
    RUN(test_defaults);
    RUN(test_from_name);
    RUN(test_accessors_and_null);
    RUN(test_sgd);
    RUN(test_adam);
    RUN(test_rmsprop);
    RUN(test_adagrad);
    RUN(test_clipping);
    RUN(test_weight_decay);
    RUN(test_schedules);
    RUN(test_errors);
    RUN(test_rebuild);
    RUN(test_zero_size);
    RUN(test_threads);
    RUN(test_isas);
    lm_ctx_free(ctx);
    return lmt_summary("test_optim");
}
