/* Parity of the optimizers, clipping, weight decay and schedules with Keras 3
 * (references from tests/keras/ref_optim.py): three variables, three steps
 * of fixed gradients; the weights after every step, the learning rate of
 * every step and the slots after the last step agree within 1e-5 relative. */
#include "lmtest.h"
#include "refs.h"
#include <lamina/lamina.h>
#include <lamina/optimizers.h>
#include "optim/optim.h"

#define FAM "optim"
#define TOL 1e-5

static lm_ctx *ctx;

static lm_optimizer *make(const char *cas) {
#define IS(s) (strcmp(cas, s) == 0)
    if (IS("sgd")) return lm_sgd(.learning_rate = 0.1);
    if (IS("sgd_default")) return lm_sgd();
    if (IS("sgd_momentum")) return lm_sgd(.learning_rate = 0.1, .momentum = 0.9);
    if (IS("sgd_nesterov")) return lm_sgd(.learning_rate = 0.1, .momentum = 0.9, .nesterov = true);
    if (IS("adam")) return lm_adam(.learning_rate = 0.1);
    if (IS("adam_default")) return lm_adam();
    if (IS("adam_amsgrad"))
        return lm_adam(.learning_rate = 0.1, .beta_1 = 0.8, .beta_2 = 0.5, .amsgrad = true);
    if (IS("adamw")) return lm_adamw(.learning_rate = 0.1, .weight_decay = 0.1);
    if (IS("adamw_default")) return lm_adamw();
    if (IS("rmsprop")) return lm_rmsprop(.learning_rate = 0.01);
    if (IS("rmsprop_default")) return lm_rmsprop();
    if (IS("rmsprop_centered")) return lm_rmsprop(.learning_rate = 0.01, .centered = true);
    if (IS("rmsprop_momentum")) return lm_rmsprop(.learning_rate = 0.01, .momentum = 0.9);
    if (IS("rmsprop_centered_momentum"))
        return lm_rmsprop(.learning_rate = 0.01, .rho = 0.8, .momentum = 0.5, .centered = true);
    if (IS("adagrad")) return lm_adagrad(.learning_rate = 0.1);
    if (IS("adagrad_default")) return lm_adagrad();
    if (IS("sgd_clipnorm")) return lm_sgd(.learning_rate = 0.1, .clipnorm = 1.0);
    if (IS("adam_clipnorm")) return lm_adam(.learning_rate = 0.1, .clipnorm = 1.0);
    if (IS("sgd_clipvalue")) return lm_sgd(.learning_rate = 0.1, .momentum = 0.5, .clipvalue = 0.5);
    if (IS("sgd_global_clipnorm")) return lm_sgd(.learning_rate = 0.1, .global_clipnorm = 1.5);
    if (IS("rmsprop_global_clipnorm"))
        return lm_rmsprop(.learning_rate = 0.01, .global_clipnorm = 1.5);
    if (IS("sgd_weight_decay"))
        return lm_sgd(.learning_rate = 0.1, .momentum = 0.9, .weight_decay = 0.05);
    if (IS("adagrad_weight_decay"))
        return lm_adagrad(.learning_rate = 0.1, .initial_accumulator_value = 0.5, .epsilon = 1e-3,
                          .weight_decay = 0.01);
    if (IS("sgd_exp_decay")) return lm_sgd(.schedule = lm_exponential_decay(0.1, 2, 0.5, false));
    if (IS("adam_exp_staircase"))
        return lm_adam(.schedule = lm_exponential_decay(0.1, 2, 0.5, true));
    if (IS("sgd_piecewise")) {
        int64_t b[] = {0, 1};
        double v[] = {0.1, 0.05, 0.01};
        return lm_sgd(.schedule = lm_piecewise_constant_decay(2, b, v));
    }
    if (IS("adam_cosine")) return lm_adam(.schedule = lm_cosine_decay(0.1, 4, 0.1));
    if (IS("adamw_cosine"))
        return lm_adamw(.schedule = lm_cosine_decay(0.1, 2, 0.2), .weight_decay = 0.1);
#undef IS
    return NULL;
}

/* Same order as CASES in tests/keras/ref_optim.py. */
static const char *const cases[] = {
    "sgd",
    "sgd_default",
    "sgd_momentum",
    "sgd_nesterov",
    "adam",
    "adam_default",
    "adam_amsgrad",
    "adamw",
    "adamw_default",
    "rmsprop",
    "rmsprop_default",
    "rmsprop_centered",
    "rmsprop_momentum",
    "rmsprop_centered_momentum",
    "adagrad",
    "adagrad_default",
    "sgd_clipnorm",
    "adam_clipnorm",
    "sgd_clipvalue",
    "sgd_global_clipnorm",
    "rmsprop_global_clipnorm",
    "sgd_weight_decay",
    "adagrad_weight_decay",
    "sgd_exp_decay",
    "adam_exp_staircase",
    "sgd_piecewise",
    "adam_cosine",
    "adamw_cosine",
};

static const char *const all_slots[] = {"momentum", "velocity", "velocity_hat", "average_gradient",
                                        "accumulator"};

static bool has(const char *cas, const char *name) {
    char path[1024];
    snprintf(path, sizeof path, "%s/keras/%s/%s.%s.npy", ref_dir(), FAM, cas, name);
    FILE *f = fopen(path, "rb");
    if (f) fclose(f);
    return f != NULL;
}

/* Largest |a - b| / max(1, |b|) over n floats. */
static double max_rel(const float *a, const float *b, int64_t n) {
    double worst = 0;
    for (int64_t i = 0; i < n; i++) {
        double e = fabs((double)a[i] - b[i]) / (fabs(b[i]) > 1 ? fabs(b[i]) : 1);
        if (!(e <= worst)) worst = e;
    }
    return worst;
}

static lm_tensor *w0, *gs, *sizes_t;
static double worst_all;

static void run_case(const char *cas) {
    lm_tensor *w = ref_load(ctx, FAM, cas, "w"), *lr = ref_load(ctx, FAM, cas, "lr");
    lm_optimizer *o = make(cas);
    CHECK_MSG(w && lr && o, "%s: missing reference or optimizer", cas);
    if (!w || !lr || !o) goto out;
    int nv = (int)lm_tensor_numel(sizes_t);
    int64_t sizes[8], n = lm_tensor_numel(w0);
    for (int i = 0; i < nv; i++) sizes[i] = (int64_t)lm_tensor_get(sizes_t, i);
    CHECK_STATUS(lm_optimizer_build(o, ctx, nv, sizes), LM_OK);
    float *p = malloc(sizeof(float) * (size_t)n), *g = malloc(sizeof(float) * (size_t)n);
    memcpy(p, lm_tensor_f32(w0), sizeof(float) * (size_t)n);
    double worst = 0;
    for (int t = 0; t < 3; t++) {
        double lr_want = lm_tensor_get(lr, t), lr_got = lm_optimizer_learning_rate(o);
        CHECK_MSG(fabs(lr_got - lr_want) <= 1e-6 * lr_want, "%s step %d: lr %.9g, Keras %.9g", cas,
                  t, lr_got, lr_want);
        memcpy(g, lm_tensor_f32(gs) + t * n, sizeof(float) * (size_t)n);
        CHECK_STATUS(lm_optimizer_step(o, p, g, 1), LM_OK);
        double e = max_rel(p, lm_tensor_f32(w) + t * n, n);
        CHECK_MSG(e <= TOL, "%s step %d: weights max rel err %.3g", cas, t, e);
        if (e > worst) worst = e;
    }
    CHECK(lm_optimizer_iterations(o) == 3);
    /* Slots: exactly those Keras creates, in its order, with its values. */
    int k = 0;
    for (size_t s = 0; s < sizeof all_slots / sizeof *all_slots; s++) {
        int mine = -1;
        for (int j = 0; j < o->n_slots; j++)
            if (!strcmp(o->slot_name[j], all_slots[s])) mine = j;
        bool keras = has(cas, all_slots[s]);
        CHECK_MSG(keras == (mine >= 0), "%s: slot %s: Keras %d, Lamina %d", cas, all_slots[s],
                  keras, mine >= 0);
        if (!keras || mine < 0) continue;
        k++;
        lm_tensor *ref = ref_load(ctx, FAM, cas, all_slots[s]);
        CHECK(ref && lm_tensor_numel(ref) == n);
        if (ref && lm_tensor_numel(ref) == n) {
            double e = max_rel(o->slot[mine], lm_tensor_f32(ref), n);
            CHECK_MSG(e <= TOL, "%s slot %s: max rel err %.3g", cas, all_slots[s], e);
            if (e > worst) worst = e;
        }
        lm_tensor_free(ref);
    }
    CHECK(k == o->n_slots);
    fprintf(stderr, "  %-26s max rel err %.2e\n", cas, worst);
    if (worst > worst_all) worst_all = worst;
    free(p);
    free(g);
out:
    lm_optimizer_free(o);
    lm_tensor_free(w);
    lm_tensor_free(lr);
}

static void test_parity(void) {
    w0 = ref_load(ctx, FAM, "common", "w0");
    gs = ref_load(ctx, FAM, "common", "g");
    sizes_t = ref_load(ctx, FAM, "common", "sizes");
    CHECK(w0 && gs && sizes_t);
    if (w0 && gs && sizes_t)
        for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) run_case(cases[i]);
    fprintf(stderr, "  worst over all cases: %.2e\n", worst_all);
    lm_tensor_free(w0);
    lm_tensor_free(gs);
    lm_tensor_free(sizes_t);
}

/* Keras's slot order, which a .keras file depends on. */
static void test_slot_order(void) {
    int64_t sz[] = {2};
    struct {
        lm_optimizer *o;
        const char *names[3];
    } t[] = {
        {lm_adam(.amsgrad = true), {"momentum", "velocity", "velocity_hat"}},
        {lm_rmsprop(.momentum = 0.5, .centered = true),
         {"velocity", "momentum", "average_gradient"}},
        {lm_rmsprop(.centered = true), {"velocity", "average_gradient"}},
    };
    for (size_t i = 0; i < sizeof t / sizeof *t; i++) {
        CHECK_STATUS(lm_optimizer_build(t[i].o, ctx, 1, sz), LM_OK);
        for (int k = 0; k < t[i].o->n_slots; k++)
            CHECK(!strcmp(t[i].o->slot_name[k], t[i].names[k]));
        lm_optimizer_free(t[i].o);
    }
}

int main(void) {
    ctx = lm_ctx_new();
    RUN(test_parity);
    RUN(test_slot_order);
    lm_ctx_free(ctx);
    return lmt_summary("test_parity_optim");
}
