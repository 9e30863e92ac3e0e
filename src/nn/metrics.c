/* Compiled metrics as Keras 3 computes them (keras/src/metrics/). Mean
 * metrics are MeanMetricWrappers: a value per sample (the mean over its
 * elements or rows), then total += sum(value * weight), count += sum(weight),
 * result = total / count (0 when count is 0). Precision and recall keep
 * confusion counts over every element. State is float32, as Keras's
 * variables, so long runs round the same way. */
#include "nn/metrics.h"
#include "core/core.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct lm_metric_state {
    lm_metric kind; /* resolved: never LM_ACCURACY */
    char name[48];
    int64_t pps, tps; /* elements per sample */
    int64_t classes;  /* last dim of the predictions */
    int64_t rows;     /* rows of `classes` predictions per sample */
    int64_t true_row; /* label elements per row (categorical: one-hot width) */
    lm_dtype true_dt;
    bool broadcast_true; /* one label value for every prediction of a sample */
    int k;
    float threshold;
    float total, count; /* mean metrics */
    float tp, fp, fn_;  /* precision / recall */
};

/* Keras's log name for metrics=["..."] with each identifier. */
static const char *const log_names[LM_METRIC_COUNT] = {
    [LM_ACCURACY] = "accuracy",
    [LM_BINARY_ACCURACY] = "binary_accuracy",
    [LM_CATEGORICAL_ACCURACY] = "categorical_accuracy",
    [LM_SPARSE_CATEGORICAL_ACCURACY] = "sparse_categorical_accuracy",
    [LM_TOP_K_CATEGORICAL_ACCURACY] = "top_k_categorical_accuracy",
    [LM_SPARSE_TOP_K_CATEGORICAL_ACCURACY] = "sparse_top_k_categorical_accuracy",
    [LM_METRIC_MAE] = "mae",
    [LM_METRIC_MSE] = "mse",
    [LM_PRECISION] = "precision",
    [LM_RECALL] = "recall"};

static int64_t last_dim(lm_shape s) {
    return s.ndim >= 2 ? s.dims[s.ndim - 1] : 1;
}

/* The shapes Keras would see; without them, (N, pps) predictions and labels
 * that are one per row when they divide the predictions evenly. */
static void resolve_shapes(const lm_metric_state_ctx *mc, lm_shape *ps, lm_shape *ts) {
    *ps = mc->pred_shape;
    *ts = mc->true_shape;
    int64_t pps = mc->pred_per_sample, tps = mc->true_per_sample;
    if (ps->ndim == 0) {
        if (tps > 1 && tps < pps && pps % tps == 0)
            *ps = (lm_shape){3, {-1, tps, pps / tps}};
        else
            *ps = (lm_shape){2, {-1, pps}};
    }
    if (ts->ndim == 0) {
        if (tps == pps)
            *ts = *ps;
        else if (tps == 1)
            *ts = (lm_shape){1, {-1}};
        else
            *ts = (lm_shape){2, {-1, tps}};
    }
}

/* compile_utils.is_binary_or_sparse_categorical. */
static lm_metric resolve_accuracy(lm_shape ps, lm_shape ts) {
    int64_t p_last = ps.dims[ps.ndim - 1], t_last = ts.dims[ts.ndim - 1];
    if (p_last == 1) return LM_BINARY_ACCURACY;
    if (ts.ndim < ps.ndim || (t_last == 1 && p_last > 1)) return LM_SPARSE_CATEGORICAL_ACCURACY;
    return LM_CATEGORICAL_ACCURACY;
}

lm_metric_state *lm_metric_state_new(lm_metric kind, const lm_metric_state_ctx *mc, lm_ctx *ctx) {
    if (!mc || kind <= LM_METRIC_NONE || kind >= LM_METRIC_COUNT) {
        lm_fail(ctx, LM_ERR_ARG, "metric: unknown metric %d", (int)kind);
        return NULL;
    }
    if (mc->pred_per_sample < 1 || mc->true_per_sample < 1) {
        lm_fail(ctx, LM_ERR_SHAPE, "%s: empty predictions or labels (%lld and %lld per sample)",
                log_names[kind], (long long)mc->pred_per_sample, (long long)mc->true_per_sample);
        return NULL;
    }
    if (mc->true_dtype != LM_F32 && mc->true_dtype != LM_I32) {
        lm_fail(ctx, LM_ERR_DTYPE, "%s: labels must be float32 or int32, not %s", log_names[kind],
                lm_dtype_name(mc->true_dtype));
        return NULL;
    }
    lm_shape ps, ts;
    resolve_shapes(mc, &ps, &ts);
    lm_metric_state *s = calloc(1, sizeof *s);
    if (!s) {
        lm_fail(ctx, LM_ERR_OOM, "out of memory");
        return NULL;
    }
    snprintf(s->name, sizeof s->name, "%s", log_names[kind]);
    s->kind = kind == LM_ACCURACY ? resolve_accuracy(ps, ts) : kind;
    s->pps = mc->pred_per_sample;
    s->tps = mc->true_per_sample;
    s->classes = last_dim(ps);
    if (s->classes < 1 || s->pps % s->classes) s->classes = s->pps;
    s->rows = s->pps / s->classes;
    s->true_dt = mc->true_dtype;
    s->k = mc->top_k > 0 ? mc->top_k : 5;
    /* Keras compares in float32: y_pred > float32(threshold). */
    s->threshold = (float)mc->threshold;

    char a[96], b[96];
    lm_shape_str(ps, a, sizeof a);
    lm_shape_str(ts, b, sizeof b);
    bool ok = true;
    switch (s->kind) {
    case LM_BINARY_ACCURACY:
    case LM_METRIC_MAE:
    case LM_METRIC_MSE:
        /* Elementwise after squeeze_or_expand_to_same_rank; (N, 1) labels broadcast. */
        s->broadcast_true = s->tps == 1 && s->pps > 1;
        ok = s->tps == s->pps || s->broadcast_true;
        break;
    case LM_PRECISION:
    case LM_RECALL:
        ok = s->tps == s->pps; /* both flattened and compared element by element */
        break;
    case LM_CATEGORICAL_ACCURACY:
    case LM_TOP_K_CATEGORICAL_ACCURACY:
        /* argmax over the label's last axis, one label row per prediction row */
        s->true_row = last_dim(ts) > 0 ? last_dim(ts) : s->tps;
        ok = s->tps % s->true_row == 0 && s->tps / s->true_row == s->rows;
        break;
    case LM_SPARSE_CATEGORICAL_ACCURACY:
    case LM_SPARSE_TOP_K_CATEGORICAL_ACCURACY:
        s->true_row = 1;
        ok = s->tps == s->rows;
        break;
    default:
        ok = false;
    }
    if (!ok) {
        lm_fail(ctx, LM_ERR_SHAPE,
                "%s: labels of shape %s do not fit predictions of shape %s (%lld label values "
                "per sample for %lld predictions)",
                s->name, b, a, (long long)s->tps, (long long)s->pps);
        free(s);
        return NULL;
    }
    return s;
}

const char *lm_metric_state_name(const lm_metric_state *s) {
    return s ? s->name : "";
}

void lm_metric_state_reset(lm_metric_state *s) {
    if (!s) return;
    s->total = s->count = 0;
    s->tp = s->fp = s->fn_ = 0;
}

static inline double label_at(const lm_metric_state *s, const void *y, int64_t i) {
    return s->true_dt == LM_I32 ? (double)((const int32_t *)y)[i] : (double)((const float *)y)[i];
}

/* jnp.argmax: the first maximum; a NaN counts as the maximum. */
static int64_t argmax_f(const float *p, int64_t n) {
    int64_t best = 0;
    for (int64_t i = 0; i < n; i++) {
        if (isnan(p[i])) return i;
        if (p[i] > p[best]) best = i;
    }
    return best;
}

static int64_t argmax_label(const lm_metric_state *s, const void *y, int64_t off, int64_t n) {
    int64_t best = 0;
    for (int64_t i = 0; i < n; i++) {
        double v = label_at(s, y, off + i);
        if (isnan(v)) return i;
        if (v > label_at(s, y, off + best)) best = i;
    }
    return best;
}

/* jax in_top_k: the target's rank is 1 + the number of strictly larger
 * scores (ties favour the target); a NaN or missing target score is -inf. */
static bool in_top_k(const float *p, int64_t n, int64_t target, int k) {
    if (target < 0) target += n; /* negative indices wrap, as jnp indexing */
    float pt = target >= 0 && target < n ? p[target] : NAN;
    if (isnan(pt)) pt = -INFINITY;
    int64_t larger = 0;
    for (int64_t i = 0; i < n; i++) larger += p[i] > pt;
    return 1 + larger <= k;
}

/* The per-sample value of a mean metric. */
static double sample_value(const lm_metric_state *s, const float *p, const void *y, int64_t i) {
    const int64_t C = s->classes;
    const float *ps = p + i * s->pps;
    double acc = 0;
    switch (s->kind) {
    case LM_BINARY_ACCURACY:
    case LM_METRIC_MAE:
    case LM_METRIC_MSE:
        for (int64_t e = 0; e < s->pps; e++) {
            double t = label_at(s, y, s->broadcast_true ? i : i * s->tps + e);
            float pv = ps[e];
            if (s->kind == LM_BINARY_ACCURACY)
                acc += t == (pv > s->threshold ? 1.0 : 0.0);
            else {
                /* float32 difference, as Keras computes it */
                float d = pv - (float)t;
                acc += s->kind == LM_METRIC_MAE ? fabsf(d) : (double)(d * d);
            }
        }
        return acc / (double)s->pps;
    case LM_CATEGORICAL_ACCURACY:
    case LM_TOP_K_CATEGORICAL_ACCURACY:
        for (int64_t r = 0; r < s->rows; r++) {
            int64_t target = argmax_label(s, y, (i * s->rows + r) * s->true_row, s->true_row);
            if (s->kind == LM_CATEGORICAL_ACCURACY)
                acc += argmax_f(ps + r * C, C) == target;
            else
                acc += in_top_k(ps + r * C, C, target, s->k);
        }
        return acc / (double)s->rows;
    case LM_SPARSE_CATEGORICAL_ACCURACY:
        for (int64_t r = 0; r < s->rows; r++) {
            /* labels are compared as float32 with the argmax */
            float t = (float)label_at(s, y, i * s->rows + r);
            acc += t == (float)argmax_f(ps + r * C, C);
        }
        return acc / (double)s->rows;
    case LM_SPARSE_TOP_K_CATEGORICAL_ACCURACY:
        for (int64_t r = 0; r < s->rows; r++) {
            double t = label_at(s, y, i * s->rows + r);
            /* labels are cast to int32 (truncation) */
            int64_t target = isfinite(t) ? (int64_t)t : INT64_MIN / 2;
            acc += in_top_k(ps + r * C, C, target, s->k);
        }
        return acc / (double)s->rows;
    default:
        return 0;
    }
}

void lm_metric_state_update(lm_metric_state *s, const float *y_pred, const void *y_true, int64_t n,
                            const float *sample_weight) {
    if (!s || !y_pred || !y_true || n <= 0) return;
    if (s->kind == LM_PRECISION || s->kind == LM_RECALL) {
        double tp = 0, fp = 0, fn = 0;
        for (int64_t i = 0; i < n; i++) {
            double w = sample_weight ? sample_weight[i] : 1.0;
            for (int64_t e = 0; e < s->pps; e++) {
                bool pos = y_pred[i * s->pps + e] > s->threshold;
                bool lab = label_at(s, y_true, i * s->tps + e) != 0;
                tp += pos && lab ? w : 0;
                fp += pos && !lab ? w : 0;
                fn += !pos && lab ? w : 0;
            }
        }
        s->tp += (float)tp;
        s->fp += (float)fp;
        s->fn_ += (float)fn;
        return;
    }
    double total = 0, count = 0;
    for (int64_t i = 0; i < n; i++) {
        double w = sample_weight ? sample_weight[i] : 1.0;
        total += (double)(float)sample_value(s, y_pred, y_true, i) * w;
        count += w;
    }
    s->total += (float)total;
    s->count += (float)count;
}

/* ops.divide_no_nan in float32. */
static double div_no_nan(float a, float b) {
    return b == 0 ? 0.0 : (double)(a / b);
}

double lm_metric_state_result(const lm_metric_state *s) {
    if (!s) return NAN;
    if (s->kind == LM_PRECISION) return div_no_nan(s->tp, s->tp + s->fp);
    if (s->kind == LM_RECALL) return div_no_nan(s->tp, s->tp + s->fn_);
    return div_no_nan(s->total, s->count);
}

void lm_metric_state_free(lm_metric_state *s) {
    free(s);
}
