/* compile_config both ways: Keras's optimizer objects (with their learning
 * rate schedules), losses and metrics as Keras 3 writes them in config.json,
 * and Keras 2's training_config. Lamina's compile keeps one from_logits flag,
 * one metric list for every output, one top-k and one threshold; configs
 * asking for more are refused with a message. */
#include "io/keras_config_compile.h"
#include "nn/train.h"
#include "optim/optim.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const cJSON *get(const cJSON *o, const char *key) {
    return cJSON_IsObject(o) ? cJSON_GetObjectItemCaseSensitive(o, key) : NULL;
}

/* {"module": module, "class_name": cls, "config": c, "registered_name": null}; takes c. */
static cJSON *entry(const char *module, const char *cls, cJSON *c) {
    cJSON *e = cJSON_CreateObject();
    if (!e || !c || lm_kc_put_str(e, "module", module) || lm_kc_put_str(e, "class_name", cls)) {
        cJSON_Delete(e);
        cJSON_Delete(c);
        return NULL;
    }
    if (lm_kc_put(e, "config", c) || lm_kc_put_null(e, "registered_name")) {
        cJSON_Delete(e);
        return NULL;
    }
    return e;
}

/* Keras keeps hyperparameters in float32 variables: a value as Keras reports it. */
static double as_f32(double v) {
    return (double)(float)v;
}

/* ---- optimizers: writing ---- */

static const struct {
    lm_opt_kind kind;
    const char *cls, *name;
} opt_names[] = {{LM_OPT_SGD, "SGD", "sgd"},
                 {LM_OPT_ADAM, "Adam", "adam"},
                 {LM_OPT_ADAMW, "AdamW", "adam_w"},
                 {LM_OPT_RMSPROP, "RMSprop", "rm_sprop"},
                 {LM_OPT_ADAGRAD, "Adagrad", "adagrad"}};

static cJSON *schedule_config(const lm_schedule *s) {
    lm_schedule_info in;
    lm_schedule_get_info(s, &in);
    cJSON *c = cJSON_CreateObject();
    lm_status st = c ? LM_OK : LM_ERR_OOM;
    if (!strcmp(in.class_name, "PiecewiseConstantDecay")) {
        cJSON *b = cJSON_CreateArray(), *v = cJSON_CreateArray();
        for (int i = 0; b && v && i <= in.n; i++) {
            if (i < in.n) cJSON_AddItemToArray(b, cJSON_CreateNumber((double)in.boundaries[i]));
            cJSON_AddItemToArray(v, cJSON_CreateNumber(in.values[i]));
        }
        if (!st)
            st = lm_kc_put(c, "boundaries", b);
        else
            cJSON_Delete(b);
        if (!st)
            st = lm_kc_put(c, "values", v);
        else
            cJSON_Delete(v);
        if (!st) st = lm_kc_put_str(c, "name", "PiecewiseConstant");
    } else {
        bool exp = !strcmp(in.class_name, "ExponentialDecay");
        if (!st) st = lm_kc_put_num(c, "initial_learning_rate", in.initial_learning_rate);
        if (!st) st = lm_kc_put_int(c, "decay_steps", in.decay_steps);
        if (!st && exp) st = lm_kc_put_num(c, "decay_rate", in.decay_rate);
        if (!st && exp) st = lm_kc_put_bool(c, "staircase", in.staircase);
        if (!st && !exp) st = lm_kc_put_num(c, "alpha", in.alpha);
        if (!st) st = lm_kc_put_str(c, "name", in.class_name);
        if (!st && !exp) st = lm_kc_put_null(c, "warmup_target");
        if (!st && !exp) st = lm_kc_put_int(c, "warmup_steps", 0);
    }
    if (st) {
        cJSON_Delete(c);
        return NULL;
    }
    return entry("keras.optimizers.schedules", in.class_name, c);
}

static lm_status put_opt(cJSON *c, const char *key, double v) {
    return v > 0 ? lm_kc_put_num(c, key, v) : lm_kc_put_null(c, key);
}

cJSON *lm_kc_optimizer_config(const lm_optimizer *o) {
    int k = 0;
    while (opt_names[k].kind != o->kind) k++;
    cJSON *c = cJSON_CreateObject();
    lm_status st = c ? LM_OK : LM_ERR_OOM;
    if (!st) st = lm_kc_put_str(c, "name", opt_names[k].name);
    if (!st)
        st = lm_kc_put(c, "learning_rate",
                       o->schedule ? schedule_config(o->schedule)
                                   : cJSON_CreateNumber(as_f32(o->lr)));
    if (!st) st = put_opt(c, "weight_decay", o->weight_decay);
    if (!st) st = put_opt(c, "clipnorm", o->clipnorm);
    if (!st) st = put_opt(c, "global_clipnorm", o->global_clipnorm);
    if (!st) st = put_opt(c, "clipvalue", o->clipvalue);
    if (!st) st = lm_kc_put_bool(c, "use_ema", false);
    if (!st) st = lm_kc_put_num(c, "ema_momentum", 0.99);
    if (!st) st = lm_kc_put_null(c, "ema_overwrite_frequency");
    if (!st) st = lm_kc_put_null(c, "loss_scale_factor");
    if (!st) st = lm_kc_put_null(c, "gradient_accumulation_steps");
    switch (o->kind) {
    case LM_OPT_SGD:
        if (!st) st = lm_kc_put_num(c, "momentum", o->momentum);
        if (!st) st = lm_kc_put_bool(c, "nesterov", o->nesterov);
        break;
    case LM_OPT_ADAM:
    case LM_OPT_ADAMW:
        if (!st) st = lm_kc_put_num(c, "beta_1", o->beta_1);
        if (!st) st = lm_kc_put_num(c, "beta_2", o->beta_2);
        if (!st) st = lm_kc_put_num(c, "epsilon", o->epsilon);
        if (!st) st = lm_kc_put_bool(c, "amsgrad", o->amsgrad);
        break;
    case LM_OPT_RMSPROP:
        if (!st) st = lm_kc_put_num(c, "rho", o->rho);
        if (!st) st = lm_kc_put_num(c, "momentum", o->momentum);
        if (!st) st = lm_kc_put_num(c, "epsilon", o->epsilon);
        if (!st) st = lm_kc_put_bool(c, "centered", o->centered);
        break;
    case LM_OPT_ADAGRAD:
        if (!st) st = lm_kc_put_num(c, "initial_accumulator_value", o->initial_accumulator_value);
        if (!st) st = lm_kc_put_num(c, "epsilon", o->epsilon);
        break;
    }
    if (st) {
        cJSON_Delete(c);
        return NULL;
    }
    return entry("keras.optimizers", opt_names[k].cls, c);
}

/* ---- optimizers: reading ---- */

static lm_schedule *schedule_from(lm_kc_reader *r, const cJSON *v) {
    const cJSON *cn = get(v, "class_name"), *c = get(v, "config");
    const char *cls = cJSON_IsString(cn) ? cn->valuestring : "";
    char b[80];
    lm_schedule *s = NULL;
    bool exp = !strcmp(cls, "ExponentialDecay"), cos = !strcmp(cls, "CosineDecay");
    if (exp || cos) { /* required: Keras's constructors have no defaults for these */
        static const char *const need[] = {"initial_learning_rate", "decay_steps", "decay_rate"};
        for (int i = 0; i < (exp ? 3 : 2); i++)
            if (!get(c, need[i]) || cJSON_IsNull(get(c, need[i])))
                lm_kc_fail(r, LM_ERR_FORMAT, "%s: the config lacks \"%s\"", cls, need[i]);
    }
    if (exp) {
        s = lm_exponential_decay(lm_kc_num(r, c, "initial_learning_rate", NAN),
                                 lm_kc_int(r, c, "decay_steps", 0, 1, INT64_C(1) << 53),
                                 lm_kc_num(r, c, "decay_rate", NAN),
                                 lm_kc_bool(r, c, "staircase", false));
    } else if (cos) {
        lm_kc_expect_null(r, c, "warmup_target");
        lm_kc_expect_null(r, c, "warmup_steps");
        s = lm_cosine_decay(lm_kc_num(r, c, "initial_learning_rate", NAN),
                            lm_kc_int(r, c, "decay_steps", 0, 1, INT64_C(1) << 53),
                            lm_kc_num(r, c, "alpha", 0.0));
    } else if (!strcmp(cls, "PiecewiseConstantDecay")) {
        const cJSON *bs = get(c, "boundaries"), *vs = get(c, "values");
        int n = cJSON_GetArraySize(bs);
        if (!cJSON_IsArray(bs) || !cJSON_IsArray(vs) || cJSON_GetArraySize(vs) != n + 1 ||
            n > 4096) {
            lm_kc_fail(r, LM_ERR_FORMAT,
                       "PiecewiseConstantDecay needs n boundaries and n + 1 values, got %s",
                       lm_kc_show(c, b, sizeof b));
            return NULL;
        }
        int64_t bnd[4096];
        double val[4097];
        for (int i = 0; i <= n && !r->st; i++) {
            const cJSON *bv = cJSON_GetArrayItem(bs, i), *vv = cJSON_GetArrayItem(vs, i);
            if (i < n && !(cJSON_IsNumber(bv) && fabs(bv->valuedouble) < 9e15))
                lm_kc_fail(r, LM_ERR_FORMAT, "PiecewiseConstantDecay: boundary %d is not a number",
                           i);
            if (!cJSON_IsNumber(vv))
                lm_kc_fail(r, LM_ERR_FORMAT, "PiecewiseConstantDecay: value %d is not a number", i);
            if (!r->st && i < n) bnd[i] = (int64_t)bv->valuedouble;
            if (!r->st) val[i] = vv->valuedouble;
        }
        if (!r->st) s = lm_piecewise_constant_decay(n, bnd, val);
    } else {
        lm_kc_fail(r, LM_ERR_UNSUPPORTED,
                   "learning-rate schedule %s is not supported (ExponentialDecay, "
                   "PiecewiseConstantDecay and CosineDecay are)",
                   lm_kc_show(cn, b, sizeof b));
        return NULL;
    }
    if (!r->st && !s) lm_kc_fail(r, LM_ERR_OOM, "out of memory");
    /* A schedule keeps its own reason for being unusable (a negative rate...). */
    double lr0 = s ? lm_schedule_value(s, 0) : 0;
    if (!r->st && !(lr0 >= 0))
        lm_kc_fail(r, LM_ERR_FORMAT, "learning-rate schedule %s: invalid values %s", cls,
                   lm_kc_show(c, b, sizeof b));
    if (r->st) {
        lm_schedule_free(s);
        return NULL;
    }
    return s;
}

/* The ranges lm_optimizer_build enforces, checked now so that a bad file
 * fails when it is read rather than at the first fit. */
static void check_optimizer(lm_kc_reader *r, const lm_optimizer *o, const char *cls) {
    struct {
        const char *key;
        double v, lo, hi;
        bool hi_open;
    } rules[] = {
        {"learning_rate", o->schedule ? 0 : o->lr, 0, INFINITY, true},
        {"weight_decay", o->weight_decay, 0, INFINITY, true},
        {"clipnorm", o->clipnorm, 0, INFINITY, true},
        {"global_clipnorm", o->global_clipnorm, 0, INFINITY, true},
        {"clipvalue", o->clipvalue, 0, INFINITY, true},
        {"beta_1", o->kind == LM_OPT_ADAM || o->kind == LM_OPT_ADAMW ? o->beta_1 : 0, 0, 1, true},
        {"beta_2", o->kind == LM_OPT_ADAM || o->kind == LM_OPT_ADAMW ? o->beta_2 : 0, 0, 1, true},
        {"rho", o->kind == LM_OPT_RMSPROP ? o->rho : 0, 0, 1, true},
        {"momentum", o->momentum, 0, 1, false},
        {"epsilon", o->epsilon, 0, INFINITY, true},
        {"initial_accumulator_value", o->initial_accumulator_value, 0, INFINITY, true}};
    for (size_t i = 0; i < sizeof rules / sizeof *rules && !r->st; i++) {
        double v = rules[i].v;
        if (!(v >= rules[i].lo && (rules[i].hi_open ? v < rules[i].hi : v <= rules[i].hi)))
            lm_kc_fail(r, LM_ERR_FORMAT, "optimizer %s: \"%s\" = %g is out of range", cls,
                       rules[i].key, v);
    }
    if (!r->st && (o->clipnorm > 0) + (o->clipvalue > 0) + (o->global_clipnorm > 0) > 1)
        lm_kc_fail(r, LM_ERR_FORMAT,
                   "optimizer %s: only one of clipnorm, clipvalue and global_clipnorm may be set",
                   cls);
}

lm_optimizer *lm_kc_optimizer_from(lm_kc_reader *r, const cJSON *v) {
    const cJSON *c = get(v, "config");
    const char *cls = cJSON_IsString(v) ? v->valuestring : NULL;
    if (cJSON_IsObject(v))
        cls = cJSON_IsString(get(v, "class_name")) ? get(v, "class_name")->valuestring : NULL;
    lm_optimizer *o = cls ? lm_optimizer_from_name(cls) : NULL;
    char b[80];
    if (!o) {
        lm_kc_fail(r, cls ? LM_ERR_UNSUPPORTED : LM_ERR_FORMAT,
                   "optimizer %s is not supported (SGD, Adam, AdamW, RMSprop and Adagrad are)",
                   lm_kc_show(v, b, sizeof b));
        return NULL;
    }
    /* Keras's values set directly: zero is a value here, not "default". */
    const cJSON *lr = get(c, "learning_rate");
    if (!lr) lr = get(c, "lr"); /* Keras 2 */
    if (cJSON_IsObject(lr))
        o->schedule = schedule_from(r, lr);
    else if (lr && !cJSON_IsNull(lr))
        o->lr = cJSON_IsNumber(lr) ? lr->valuedouble : NAN;
    if (!r->st && !(o->schedule || (o->lr >= 0 && isfinite(o->lr))))
        lm_kc_fail(r, LM_ERR_FORMAT,
                   "optimizer %s: \"learning_rate\" must be a number >= 0 or a schedule, got %s",
                   cls, lm_kc_show(lr, b, sizeof b));
    o->weight_decay = lm_kc_num(r, c, "weight_decay", o->weight_decay);
    o->clipnorm = lm_kc_num(r, c, "clipnorm", 0);
    o->global_clipnorm = lm_kc_num(r, c, "global_clipnorm", 0);
    o->clipvalue = lm_kc_num(r, c, "clipvalue", 0);
    static const char *const unsupported[] = {"use_ema", "ema_overwrite_frequency",
                                              "loss_scale_factor", "gradient_accumulation_steps",
                                              "decay"};
    for (size_t i = 0; i < sizeof unsupported / sizeof *unsupported; i++) {
        const cJSON *u = get(c, unsupported[i]);
        if (u && !cJSON_IsNull(u) && !cJSON_IsFalse(u) &&
            !(cJSON_IsNumber(u) && u->valuedouble == 0))
            lm_kc_fail(r, LM_ERR_UNSUPPORTED, "optimizer %s: \"%s\" = %s is not supported", cls,
                       unsupported[i], lm_kc_show(u, b, sizeof b));
    }
    switch (o->kind) {
    case LM_OPT_SGD:
        o->momentum = lm_kc_num(r, c, "momentum", 0);
        o->nesterov = lm_kc_bool(r, c, "nesterov", false);
        break;
    case LM_OPT_ADAM:
    case LM_OPT_ADAMW:
        o->beta_1 = lm_kc_num(r, c, "beta_1", o->beta_1);
        o->beta_2 = lm_kc_num(r, c, "beta_2", o->beta_2);
        o->epsilon = lm_kc_num(r, c, "epsilon", o->epsilon);
        o->amsgrad = lm_kc_bool(r, c, "amsgrad", false);
        break;
    case LM_OPT_RMSPROP:
        o->rho = lm_kc_num(r, c, "rho", o->rho);
        o->momentum = lm_kc_num(r, c, "momentum", 0);
        o->epsilon = lm_kc_num(r, c, "epsilon", o->epsilon);
        o->centered = lm_kc_bool(r, c, "centered", false);
        break;
    case LM_OPT_ADAGRAD:
        o->initial_accumulator_value =
            lm_kc_num(r, c, "initial_accumulator_value", o->initial_accumulator_value);
        o->epsilon = lm_kc_num(r, c, "epsilon", o->epsilon);
        break;
    }
    if (!r->st) check_optimizer(r, o, cls);
    if (r->st) {
        lm_optimizer_free(o);
        return NULL;
    }
    return o;
}

/* ---- losses and metrics ---- */

/* The names users give Keras most ("mse", as the metrics' "mae"). */
static const char *const loss_names[LM_LOSS_COUNT] = {
    [LM_MEAN_SQUARED_ERROR] = "mse",
    [LM_MEAN_ABSOLUTE_ERROR] = "mae",
    [LM_HUBER] = "huber",
    [LM_BINARY_CROSSENTROPY] = "binary_crossentropy",
    [LM_CATEGORICAL_CROSSENTROPY] = "categorical_crossentropy",
    [LM_SPARSE_CATEGORICAL_CROSSENTROPY] = "sparse_categorical_crossentropy"};

static const char *const loss_classes[LM_LOSS_COUNT] = {
    [LM_MEAN_SQUARED_ERROR] = "MeanSquaredError",
    [LM_MEAN_ABSOLUTE_ERROR] = "MeanAbsoluteError",
    [LM_HUBER] = "Huber",
    [LM_BINARY_CROSSENTROPY] = "BinaryCrossentropy",
    [LM_CATEGORICAL_CROSSENTROPY] = "CategoricalCrossentropy",
    [LM_SPARSE_CATEGORICAL_CROSSENTROPY] = "SparseCategoricalCrossentropy"};

static bool is_xent(lm_loss l) {
    return l == LM_BINARY_CROSSENTROPY || l == LM_CATEGORICAL_CROSSENTROPY ||
           l == LM_SPARSE_CATEGORICAL_CROSSENTROPY;
}

/* A name when Keras's defaults hold, else the loss object. */
static cJSON *loss_json(const lm_train *t, lm_loss l) {
    if (l == LM_LOSS_NONE) return cJSON_CreateNull();
    bool logits = is_xent(l) && t->from_logits, delta = l == LM_HUBER && t->huber_delta != 1.0;
    if (!logits && !delta) return cJSON_CreateString(loss_names[l]);
    cJSON *c = cJSON_CreateObject();
    lm_status st = c ? LM_OK : LM_ERR_OOM;
    if (!st) st = lm_kc_put_str(c, "name", l == LM_HUBER ? "huber_loss" : loss_names[l]);
    /* (only crossentropies and Huber get here, whose names are Keras's own) */
    if (!st) st = lm_kc_put_str(c, "reduction", "sum_over_batch_size");
    if (!st && l == LM_HUBER) st = lm_kc_put_num(c, "delta", t->huber_delta);
    if (!st && is_xent(l)) st = lm_kc_put_bool(c, "from_logits", true);
    if (!st && l != LM_SPARSE_CATEGORICAL_CROSSENTROPY && is_xent(l))
        st = lm_kc_put_num(c, "label_smoothing", 0.0);
    if (!st && l != LM_SPARSE_CATEGORICAL_CROSSENTROPY && is_xent(l))
        st = lm_kc_put_int(c, "axis", -1);
    if (!st && l == LM_SPARSE_CATEGORICAL_CROSSENTROPY) st = lm_kc_put_null(c, "ignore_class");
    if (st) {
        cJSON_Delete(c);
        return NULL;
    }
    return entry("keras.losses", loss_classes[l], c);
}

static const struct {
    lm_metric kind;
    const char *name, *cls;
} metric_tab[] = {
    {LM_ACCURACY, "accuracy", NULL},
    {LM_BINARY_ACCURACY, "binary_accuracy", "BinaryAccuracy"},
    {LM_CATEGORICAL_ACCURACY, "categorical_accuracy", "CategoricalAccuracy"},
    {LM_SPARSE_CATEGORICAL_ACCURACY, "sparse_categorical_accuracy", "SparseCategoricalAccuracy"},
    {LM_TOP_K_CATEGORICAL_ACCURACY, "top_k_categorical_accuracy", "TopKCategoricalAccuracy"},
    {LM_SPARSE_TOP_K_CATEGORICAL_ACCURACY, "sparse_top_k_categorical_accuracy",
     "SparseTopKCategoricalAccuracy"},
    {LM_METRIC_MAE, "mae", "MeanAbsoluteError"},
    {LM_METRIC_MSE, "mse", "MeanSquaredError"},
    {LM_PRECISION, "precision", "Precision"},
    {LM_RECALL, "recall", "Recall"},
};

static int metric_row(lm_metric k) {
    for (int i = 0; i < (int)(sizeof metric_tab / sizeof *metric_tab); i++)
        if (metric_tab[i].kind == k) return i;
    return 0;
}

static cJSON *metric_json(const lm_train *t, lm_metric k) {
    int i = metric_row(k);
    bool topk = k == LM_TOP_K_CATEGORICAL_ACCURACY || k == LM_SPARSE_TOP_K_CATEGORICAL_ACCURACY;
    bool thr = k == LM_BINARY_ACCURACY || k == LM_PRECISION || k == LM_RECALL;
    if (!(topk && t->top_k != 5) && !(thr && t->threshold != 0.5))
        return cJSON_CreateString(metric_tab[i].name);
    cJSON *c = cJSON_CreateObject();
    lm_status st = c ? LM_OK : LM_ERR_OOM;
    if (!st) st = lm_kc_put_str(c, "name", metric_tab[i].name);
    if (!st) st = lm_kc_put_str(c, "dtype", "float32");
    if (!st && topk) st = lm_kc_put_int(c, "k", t->top_k);
    if (!st && k == LM_BINARY_ACCURACY) st = lm_kc_put_num(c, "threshold", t->threshold);
    if (!st && k != LM_BINARY_ACCURACY && thr) {
        st = lm_kc_put_num(c, "thresholds", t->threshold);
        if (!st) st = lm_kc_put_null(c, "top_k");
        if (!st) st = lm_kc_put_null(c, "class_id");
    }
    if (st) {
        cJSON_Delete(c);
        return NULL;
    }
    return entry("keras.metrics", metric_tab[i].cls, c);
}

static cJSON *metric_list(const lm_train *t) {
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; a && i < t->n_metric_kinds; i++) {
        cJSON *e = metric_json(t, t->metric_kinds[i]);
        if (!e || !cJSON_AddItemToArray(a, e)) {
            cJSON_Delete(e);
            cJSON_Delete(a);
            return NULL;
        }
    }
    return a;
}

lm_status lm_kc_compile_config(lm_model *m, cJSON **out) {
    *out = NULL;
    const lm_train *t = m->train;
    if (!t || !t->compiled || !t->opt) return LM_OK;
    int no = m->n_outputs > 0 ? m->n_outputs : 1;
    cJSON *c = cJSON_CreateObject();
    lm_status st = c ? LM_OK : LM_ERR_OOM;
    if (!st) st = lm_kc_put(c, "optimizer", lm_kc_optimizer_config(t->opt));
    if (!st && no == 1) {
        st = lm_kc_put(c, "loss", loss_json(t, t->loss[0]));
    } else if (!st) {
        cJSON *a = cJSON_CreateArray();
        for (int i = 0; a && i < no; i++)
            if (!cJSON_AddItemToArray(a, loss_json(t, t->loss[i]))) st = LM_ERR_OOM;
        if (!st)
            st = lm_kc_put(c, "loss", a);
        else
            cJSON_Delete(a);
    }
    bool weighted = false;
    for (int i = 0; i < no; i++) weighted = weighted || t->loss_weight[i] != 1.0;
    if (!st && weighted) {
        cJSON *a = cJSON_CreateArray();
        for (int i = 0; a && i < no; i++)
            cJSON_AddItemToArray(a, cJSON_CreateNumber(t->loss_weight[i]));
        st = lm_kc_put(c, "loss_weights", a);
    } else if (!st) {
        st = lm_kc_put_null(c, "loss_weights");
    }
    if (!st && !t->n_metric_kinds) {
        st = lm_kc_put_null(c, "metrics");
    } else if (!st && no == 1) {
        st = lm_kc_put(c, "metrics", metric_list(t));
    } else if (!st) { /* Keras 3 wants one list per output; Lamina's applies to all */
        cJSON *a = cJSON_CreateArray();
        for (int i = 0; a && i < no && !st; i++)
            if (!cJSON_AddItemToArray(a, metric_list(t))) st = LM_ERR_OOM;
        if (!st)
            st = lm_kc_put(c, "metrics", a);
        else
            cJSON_Delete(a);
    }
    if (!st) st = lm_kc_put_null(c, "weighted_metrics");
    if (!st) st = lm_kc_put_bool(c, "run_eagerly", false);
    if (!st) st = lm_kc_put_int(c, "steps_per_execution", 1);
    if (!st) st = lm_kc_put_bool(c, "jit_compile", true);
    if (st) {
        cJSON_Delete(c);
        return lm_fail(m->ctx, st, "%s: out of memory writing the compile config", m->name);
    }
    *out = c;
    return LM_OK;
}

/* ---- compile: reading ---- */

typedef struct loss_read {
    lm_loss kind;
    int logits; /* -1 unknown, 0, 1 */
    double delta;
} loss_read;

static bool loss_from(lm_kc_reader *r, const cJSON *v, loss_read *out) {
    char b[80];
    out->kind = LM_LOSS_NONE, out->logits = -1, out->delta = 1.0;
    if (!v || cJSON_IsNull(v)) return true;
    const cJSON *c = NULL;
    const char *name = cJSON_IsString(v) ? v->valuestring : NULL;
    if (cJSON_IsObject(v)) {
        const cJSON *cn = get(v, "class_name");
        name = cJSON_IsString(cn) ? cn->valuestring : NULL;
        c = get(v, "config");
        if (name && !strcmp(name, "LossFunctionWrapper")) { /* Keras 2 */
            const cJSON *fn = get(c, "fn");
            name = cJSON_IsString(fn) ? fn->valuestring : NULL;
        }
    }
    int k = name ? lm_loss_from_name(name) : 0;
    for (int i = 1; name && !k && i < LM_LOSS_COUNT; i++)
        if (!strcmp(name, loss_classes[i])) k = i;
    if (!k) {
        lm_kc_fail(r, name ? LM_ERR_UNSUPPORTED : LM_ERR_FORMAT, "loss %s is not supported",
                   lm_kc_show(v, b, sizeof b));
        return false;
    }
    out->kind = (lm_loss)k;
    if (c) {
        const char *red = lm_kc_str(r, c, "reduction", "sum_over_batch_size");
        if (strcmp(red, "sum_over_batch_size") && strcmp(red, "auto") &&
            strcmp(red, "sum_over_batch_size"))
            lm_kc_fail(r, LM_ERR_UNSUPPORTED, "loss reduction \"%.40s\" is not supported", red);
        if (is_xent(out->kind)) out->logits = lm_kc_bool(r, c, "from_logits", false);
        if (out->kind == LM_HUBER) out->delta = lm_kc_num(r, c, "delta", 1.0);
        lm_kc_expect_null(r, c, "label_smoothing");
        lm_kc_expect_null(r, c, "ignore_class");
        int64_t axis = lm_kc_int(r, c, "axis", -1, -64, 64);
        if (axis != -1)
            lm_kc_fail(r, LM_ERR_UNSUPPORTED, "loss axis %lld is not supported", (long long)axis);
    }
    return r->st == LM_OK;
}

/* A metric name or object; top_k and threshold when it sets them. */
static lm_metric metric_from(lm_kc_reader *r, const cJSON *v, int *top_k, double *threshold) {
    char b[80];
    const char *name = cJSON_IsString(v) ? v->valuestring : NULL;
    const cJSON *c = NULL;
    lm_metric k = LM_METRIC_NONE;
    if (cJSON_IsObject(v)) {
        const cJSON *cn = get(v, "class_name");
        c = get(v, "config");
        name = cJSON_IsString(cn) ? cn->valuestring : NULL;
        if (name && !strcmp(name, "MeanMetricWrapper")) { /* Keras 2: the function's name */
            const cJSON *fn = get(c, "fn");
            if (!cJSON_IsString(fn)) fn = get(c, "name");
            name = cJSON_IsString(fn) ? fn->valuestring : NULL;
        }
        for (int i = 0; name && i < (int)(sizeof metric_tab / sizeof *metric_tab); i++)
            if (metric_tab[i].cls && !strcmp(name, metric_tab[i].cls)) k = metric_tab[i].kind;
    }
    if (!k && name) k = lm_metric_from_name(name);
    if (!k) {
        lm_kc_fail(r, name ? LM_ERR_UNSUPPORTED : LM_ERR_FORMAT, "metric %s is not supported",
                   lm_kc_show(v, b, sizeof b));
        return LM_METRIC_NONE;
    }
    if (c && (k == LM_TOP_K_CATEGORICAL_ACCURACY || k == LM_SPARSE_TOP_K_CATEGORICAL_ACCURACY))
        *top_k = (int)lm_kc_int(r, c, "k", 5, 1, 1 << 20);
    if (c && k == LM_BINARY_ACCURACY) *threshold = lm_kc_num(r, c, "threshold", 0.5);
    if (c && (k == LM_PRECISION || k == LM_RECALL)) {
        const cJSON *t = get(c, "thresholds");
        if (cJSON_IsArray(t) && cJSON_GetArraySize(t) == 1) t = cJSON_GetArrayItem(t, 0);
        if (t && !cJSON_IsNull(t)) {
            if (cJSON_IsNumber(t))
                *threshold = t->valuedouble;
            else
                lm_kc_fail(r, LM_ERR_UNSUPPORTED, "metric %s: several thresholds", name);
        }
        lm_kc_expect_null(r, c, "top_k");
        lm_kc_expect_null(r, c, "class_id");
    }
    return k;
}

/* Lamina applies one metric list to every output: per-output lists must agree. */
static int metrics_from(lm_kc_reader *r, const cJSON *v, int n_out, lm_metric *out, int max,
                        int *top_k, double *threshold) {
    if (!v || cJSON_IsNull(v)) return 0;
    char b[80];
    const cJSON *lists[LM_MAX_IO];
    int n_lists = 0;
    const cJSON *e;
    bool nested = false;
    cJSON_ArrayForEach(e, v) nested =
        nested || cJSON_IsArray(e) || (cJSON_IsObject(v) && !get(v, "class_name"));
    if (cJSON_IsObject(v) && !get(v, "class_name")) { /* {output name: metrics} */
        cJSON_ArrayForEach(e, v) if (n_lists < LM_MAX_IO) lists[n_lists++] = e;
    } else if (cJSON_IsArray(v) && nested) {
        cJSON_ArrayForEach(e, v) if (n_lists < LM_MAX_IO) lists[n_lists++] = e;
    } else if (cJSON_IsArray(v) && n_out > 1 && cJSON_GetArraySize(v) == n_out) {
        cJSON_ArrayForEach(e, v) if (n_lists < LM_MAX_IO) lists[n_lists++] = e; /* one each */
    } else {
        lists[n_lists++] = v;
    }
    int n = -1;
    for (int i = 0; i < n_lists && !r->st; i++) {
        lm_metric cur[LM_MAX_METRICS];
        int k = 0;
        const cJSON *l = lists[i];
        if (cJSON_IsNull(l)) l = NULL;
        if (l && !cJSON_IsArray(l)) {
            if (k < LM_MAX_METRICS) cur[k++] = metric_from(r, l, top_k, threshold);
        } else {
            cJSON_ArrayForEach(e, l) {
                if (k == LM_MAX_METRICS) {
                    lm_kc_fail(r, LM_ERR_UNSUPPORTED, "more than %d metrics", LM_MAX_METRICS);
                    break;
                }
                cur[k++] = metric_from(r, e, top_k, threshold);
            }
        }
        if (r->st) break;
        if (n < 0) {
            n = k < max ? k : max;
            memcpy(out, cur, (size_t)n * sizeof *out);
        } else if (n != k || memcmp(out, cur, (size_t)n * sizeof *out)) {
            lm_kc_fail(r, LM_ERR_UNSUPPORTED,
                       "different metrics per output (%s); Lamina applies one list to every output",
                       lm_kc_show(v, b, sizeof b));
        }
    }
    return r->st ? -1 : n < 0 ? 0 : n;
}

lm_status lm_kc_compile_from(lm_kc_reader *r, lm_model *m, const cJSON *cc, bool legacy) {
    char b[80];
    r->layer = NULL;
    const cJSON *ov = get(cc, legacy ? "optimizer_config" : "optimizer");
    if (!ov && legacy) ov = get(cc, "optimizer");
    lm_optimizer *opt = ov && !cJSON_IsNull(ov) ? lm_kc_optimizer_from(r, ov) : lm_rmsprop();
    if (!opt && !r->st) lm_kc_fail(r, LM_ERR_OOM, "out of memory");
    int no = m->n_outputs > 0 ? m->n_outputs : 1; /* an unbuilt Sequential model has one */
    lm_loss losses[LM_MAX_IO] = {LM_LOSS_NONE};
    double weights[LM_MAX_IO];
    int logits = -1;
    double delta = 1.0;
    const cJSON *lv = get(cc, "loss");
    const cJSON *per[LM_MAX_IO] = {NULL};
    if (cJSON_IsArray(lv)) {
        if (cJSON_GetArraySize(lv) != no)
            lm_kc_fail(r, LM_ERR_FORMAT, "\"loss\" has %d entries for %d outputs",
                       cJSON_GetArraySize(lv), no);
        for (int i = 0; i < no && !r->st; i++) per[i] = cJSON_GetArrayItem(lv, i);
    } else if (cJSON_IsObject(lv) && !get(lv, "class_name")) { /* {output name: loss} */
        for (int i = 0; i < no; i++) {
            const lm_kt *o = i < m->n_outputs ? m->outputs[i] : NULL;
            per[i] = o ? get(lv, o->layer ? o->layer->name : o->name) : NULL;
        }
    } else {
        for (int i = 0; i < no; i++) per[i] = lv;
    }
    for (int i = 0; i < no && !r->st; i++) {
        loss_read lr;
        if (!loss_from(r, per[i], &lr)) break;
        losses[i] = lr.kind;
        if (lr.logits >= 0 && logits >= 0 && lr.logits != logits)
            lm_kc_fail(r, LM_ERR_UNSUPPORTED, "from_logits differs between outputs' losses");
        if (lr.logits >= 0) logits = lr.logits;
        if (lr.kind == LM_HUBER) delta = lr.delta;
    }
    const cJSON *wv = get(cc, "loss_weights");
    for (int i = 0; i < no; i++) weights[i] = 1.0;
    if (wv && !cJSON_IsNull(wv) && !r->st) {
        bool ok = cJSON_IsArray(wv) ? cJSON_GetArraySize(wv) == no
                                    : cJSON_IsObject(wv) || cJSON_IsNumber(wv);
        for (int i = 0; ok && i < no; i++) {
            const cJSON *w = cJSON_IsNumber(wv)  ? wv
                             : cJSON_IsArray(wv) ? cJSON_GetArrayItem(wv, i)
                             : i >= m->n_outputs
                                 ? NULL
                                 : get(wv, m->outputs[i]->layer ? m->outputs[i]->layer->name
                                                                : m->outputs[i]->name);
            if (w && cJSON_IsNumber(w) && isfinite(w->valuedouble))
                weights[i] = w->valuedouble;
            else if (w && !cJSON_IsNull(w))
                ok = false;
        }
        if (!ok)
            lm_kc_fail(r, LM_ERR_FORMAT, "\"loss_weights\" %s does not fit %d outputs",
                       lm_kc_show(wv, b, sizeof b), no);
    }
    lm_metric metrics[LM_MAX_METRICS + 1];
    int top_k = 5;
    double threshold = 0.5;
    int nm = r->st ? -1
                   : metrics_from(r, get(cc, "metrics"), no, metrics, LM_MAX_METRICS, &top_k,
                                  &threshold);
    const cJSON *wm = get(cc, "weighted_metrics");
    if (!r->st && wm && !cJSON_IsNull(wm) && !(cJSON_IsArray(wm) && !cJSON_GetArraySize(wm)))
        lm_kc_fail(r, LM_ERR_UNSUPPORTED, "\"weighted_metrics\" are not supported");
    if (r->st || nm < 0) {
        lm_optimizer_free(opt);
        return r->st;
    }
    metrics[nm] = LM_METRIC_NONE;
    /* One output: .loss, which also serves a Sequential model built later. */
    lm_status st =
        lm_compile(m, .optimizer = opt, .loss = losses[0], .losses = no > 1 ? losses : NULL,
                   .loss_weights = weights, .from_logits = logits == 1, .huber_delta = delta,
                   .metrics = nm ? metrics : NULL, .top_k = top_k, .threshold = threshold);
    if (st) lm_kc_fail(r, st, "compile: %s", lm_model_error(m));
    return r->st;
}
