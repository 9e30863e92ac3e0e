/* Keras config JSON: the writers layers use in their get_config hooks, the
 * layer entry ({"module", "class_name", "config", "registered_name"}) and the
 * thread-local message behind lm_saving_error. */
#include "io/keras_config.h"
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static _Thread_local char saving_err[1024];

void lm_kc_set_error(const char *msg) {
    snprintf(saving_err, sizeof saving_err, "%s", msg ? msg : "");
}

const char *lm_saving_error(void) {
    return saving_err;
}

lm_status lm_kc_put(cJSON *obj, const char *key, cJSON *item) {
    if (!obj || !item) {
        cJSON_Delete(item);
        return LM_ERR_OOM;
    }
    if (cJSON_GetObjectItemCaseSensitive(obj, key)) {
        if (cJSON_ReplaceItemInObjectCaseSensitive(obj, key, item)) return LM_OK;
        cJSON_Delete(item);
        return LM_ERR_OOM;
    }
    if (cJSON_AddItemToObject(obj, key, item)) return LM_OK;
    cJSON_Delete(item);
    return LM_ERR_OOM;
}

lm_status lm_kc_put_int(cJSON *obj, const char *key, int64_t v) {
    return lm_kc_put(obj, key, cJSON_CreateNumber((double)v));
}

lm_status lm_kc_put_num(cJSON *obj, const char *key, double v) {
    return lm_kc_put(obj, key, isfinite(v) ? cJSON_CreateNumber(v) : cJSON_CreateNull());
}

/* The shortest decimal that reads back as the same float, as a double. */
static double f32_decimal(float v) {
    char buf[32];
    for (int p = 1; p <= 9; p++) {
        snprintf(buf, sizeof buf, "%.*g", p, (double)v);
        if (strtof(buf, NULL) == v) return strtod(buf, NULL);
    }
    return (double)v;
}

lm_status lm_kc_put_f32(cJSON *obj, const char *key, float v) {
    return lm_kc_put_num(obj, key, isfinite(v) ? f32_decimal(v) : (double)v);
}

lm_status lm_kc_put_bool(cJSON *obj, const char *key, bool v) {
    return lm_kc_put(obj, key, cJSON_CreateBool(v));
}

lm_status lm_kc_put_null(cJSON *obj, const char *key) {
    return lm_kc_put(obj, key, cJSON_CreateNull());
}

lm_status lm_kc_put_str(cJSON *obj, const char *key, const char *s) {
    return lm_kc_put(obj, key, s ? cJSON_CreateString(s) : cJSON_CreateNull());
}

lm_status lm_kc_put_ints(cJSON *obj, const char *key, int n, const int64_t *v) {
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; a && i < n; i++) {
        cJSON *x = cJSON_CreateNumber((double)v[i]);
        if (!x || !cJSON_AddItemToArray(a, x)) {
            cJSON_Delete(x);
            cJSON_Delete(a);
            return LM_ERR_OOM;
        }
    }
    return lm_kc_put(obj, key, a);
}

lm_status lm_kc_put_padding(cJSON *obj, const char *key, lm_padding p) {
    return lm_kc_put_str(obj, key,
                         p == LM_PAD_SAME     ? "same"
                         : p == LM_PAD_CAUSAL ? "causal"
                                              : "valid");
}

lm_status lm_kc_put_act(cJSON *obj, const char *key, lm_activation a) {
    const char *n = lm_activation_name(a);
    return lm_kc_put_str(obj, key, n ? n : "linear");
}

/* {"module": module, "class_name": cls, "config": config, "registered_name": null} */
static cJSON *object_entry(const char *module, const char *cls, cJSON *config) {
    cJSON *e = cJSON_CreateObject();
    if (!e || !config || lm_kc_put_str(e, "module", module) ||
        lm_kc_put_str(e, "class_name", cls)) {
        cJSON_Delete(config);
        cJSON_Delete(e);
        return NULL;
    }
    /* lm_kc_put takes config (freeing it on failure). */
    if (lm_kc_put(e, "config", config) || lm_kc_put_null(e, "registered_name")) {
        cJSON_Delete(e);
        return NULL;
    }
    return e;
}

/* Keras's initializer configs: the seed first, then the class's own keys. */
lm_status lm_kc_put_init(cJSON *obj, const char *key, lm_initializer in, lm_init_kind dflt) {
    if (in.kind == LM_INIT_DEFAULT) in.kind = dflt;
    if ((int)in.kind <= 0 || in.kind >= LM_INIT_COUNT) in.kind = LM_INIT_ZEROS;
    cJSON *c = cJSON_CreateObject();
    lm_status st = c ? LM_OK : LM_ERR_OOM;
    bool seeded =
        in.kind != LM_INIT_ZEROS && in.kind != LM_INIT_ONES && in.kind != LM_INIT_CONSTANT;
    if (!st && seeded)
        st = in.has_seed ? lm_kc_put_int(c, "seed", (int64_t)in.seed) : lm_kc_put_null(c, "seed");
    switch (in.kind) {
    case LM_INIT_GLOROT_UNIFORM:
    case LM_INIT_GLOROT_NORMAL:
    case LM_INIT_HE_UNIFORM:
    case LM_INIT_HE_NORMAL:
    case LM_INIT_LECUN_UNIFORM:
    case LM_INIT_LECUN_NORMAL:
        if (!st) st = lm_kc_put_null(c, "input_axes");
        if (!st) st = lm_kc_put_null(c, "output_axes");
        break;
    case LM_INIT_ORTHOGONAL:
        if (!st) st = lm_kc_put_num(c, "gain", in.gain != 0 ? in.gain : 1.0);
        break;
    case LM_INIT_CONSTANT:
        if (!st) st = lm_kc_put_num(c, "value", in.value);
        break;
    case LM_INIT_RANDOM_NORMAL:
    case LM_INIT_TRUNCATED_NORMAL:
        if (!st) st = lm_kc_put_num(c, "mean", in.mean);
        if (!st) st = lm_kc_put_num(c, "stddev", in.stddev != 0 ? in.stddev : 0.05);
        break;
    case LM_INIT_RANDOM_UNIFORM: {
        bool dflt_range = in.minval == 0 && in.maxval == 0;
        if (!st) st = lm_kc_put_num(c, "minval", dflt_range ? -0.05 : in.minval);
        if (!st) st = lm_kc_put_num(c, "maxval", dflt_range ? 0.05 : in.maxval);
        break;
    }
    default:
        break;
    }
    if (st) {
        cJSON_Delete(c);
        return st;
    }
    return lm_kc_put(obj, key, object_entry("keras.initializers", lm_init_class_name(in.kind), c));
}

lm_status lm_kc_put_reg(cJSON *obj, const char *key, const lm_regularizer *r) {
    if (!r || (r->l1 == 0 && r->l2 == 0)) return lm_kc_put_null(obj, key);
    cJSON *c = cJSON_CreateObject();
    const char *cls = r->l1 != 0 && r->l2 != 0 ? "L1L2" : r->l1 != 0 ? "L1" : "L2";
    lm_status st = c ? LM_OK : LM_ERR_OOM;
    if (!st && r->l1 != 0) st = lm_kc_put_num(c, "l1", r->l1);
    if (!st && r->l2 != 0) st = lm_kc_put_num(c, "l2", r->l2);
    if (st) {
        cJSON_Delete(c);
        return st;
    }
    return lm_kc_put(obj, key, object_entry("keras.regularizers", cls, c));
}

/* Keras's DTypePolicy object for float32, the only policy Lamina computes in. */
cJSON *lm_kc_dtype_policy(void) {
    cJSON *c = cJSON_CreateObject();
    if (lm_kc_put_str(c, "name", "float32")) {
        cJSON_Delete(c);
        return NULL;
    }
    return object_entry("keras", "DTypePolicy", c);
}

cJSON *lm_kc_layer_entry(const lm_layer *l) {
    cJSON *c = cJSON_CreateObject();
    lm_status st = c ? LM_OK : LM_ERR_OOM;
    if (!st) st = lm_kc_put_str(c, "name", l->name ? l->name : l->vt->base_name);
    if (!st) st = lm_kc_put_bool(c, "trainable", l->trainable);
    if (!st) st = lm_kc_put(c, "dtype", lm_kc_dtype_policy());
    if (!st && l->has_activity_reg && (l->activity_reg.l1 != 0 || l->activity_reg.l2 != 0))
        st = lm_kc_put_reg(c, "activity_regularizer", &l->activity_reg);
    if (!st && l->vt->get_config) {
        st = l->vt->get_config(l, c);
        if (st && st != LM_ERR_OOM) { /* the hook's message is in the context */
            cJSON_Delete(c);
            return NULL;
        }
    }
    cJSON *e = st ? NULL : object_entry("keras.layers", l->vt->class_name, c);
    if (st) cJSON_Delete(c);
    if (!e) lm_fail(l->ctx, LM_ERR_OOM, "%s: out of memory writing the config", lm_layer_name(l));
    return e;
}

/* ---- reading ---- */

cJSON *lm_kc_parse(const char *text, size_t len) {
    const char *end = NULL;
    cJSON *j = text ? cJSON_ParseWithLengthOpts(text, len, &end, false) : NULL;
    /* cJSON stops after the first value: anything but blanks after it is an error. */
    for (; j && end && end < text + len; end++)
        if (*end != ' ' && *end != '\t' && *end != '\n' && *end != '\r') {
            cJSON_Delete(j);
            return NULL;
        }
    return j;
}

lm_status lm_kc_fail(lm_kc_reader *r, lm_status st, const char *fmt, ...) {
    if (r->st) return r->st; /* the first error stands */
    char msg[700];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (r->layer)
        snprintf(r->err, sizeof r->err, "layer \"%.200s\" (%.80s): %s", r->layer,
                 r->cls ? r->cls : "?", msg);
    else
        snprintf(r->err, sizeof r->err, "%s", msg);
    r->st = st;
    return st;
}

/* A short rendering of a JSON value for messages. */
const char *lm_kc_show(const cJSON *v, char *buf, size_t len) {
    char *s = v ? cJSON_PrintUnformatted(v) : NULL;
    if (!s) {
        snprintf(buf, len, "%s", v ? "?" : "nothing");
        return buf;
    }
    if (strlen(s) > 60)
        snprintf(buf, len, "%.57s...", s);
    else
        snprintf(buf, len, "%s", s);
    free(s);
    return buf;
}

static const cJSON *item(const cJSON *o, const char *key) {
    return cJSON_IsObject(o) ? cJSON_GetObjectItemCaseSensitive(o, key) : NULL;
}

static bool absent(const cJSON *v) {
    return !v || cJSON_IsNull(v);
}

/* An integral JSON number in [lo, hi]. */
static bool as_int(const cJSON *v, int64_t lo, int64_t hi, int64_t *out) {
    if (!cJSON_IsNumber(v)) return false;
    double d = v->valuedouble;
    if (!(d >= (double)lo && d <= (double)hi) || d != floor(d)) return false;
    *out = (int64_t)d;
    return true;
}

int64_t lm_kc_int(lm_kc_reader *r, const cJSON *o, const char *key, int64_t dflt, int64_t lo,
                  int64_t hi) {
    const cJSON *v = item(o, key);
    int64_t x;
    if (absent(v)) return dflt;
    if (as_int(v, lo, hi, &x)) return x;
    char b[80];
    lm_kc_fail(r, LM_ERR_FORMAT, "\"%s\" must be an integer in [%lld, %lld], got %s", key,
               (long long)lo, (long long)hi, lm_kc_show(v, b, sizeof b));
    return dflt;
}

double lm_kc_num(lm_kc_reader *r, const cJSON *o, const char *key, double dflt) {
    const cJSON *v = item(o, key);
    if (absent(v)) return dflt;
    if (cJSON_IsNumber(v) && isfinite(v->valuedouble)) return v->valuedouble;
    char b[80];
    lm_kc_fail(r, LM_ERR_FORMAT, "\"%s\" must be a finite number, got %s", key,
               lm_kc_show(v, b, sizeof b));
    return dflt;
}

bool lm_kc_bool(lm_kc_reader *r, const cJSON *o, const char *key, bool dflt) {
    const cJSON *v = item(o, key);
    if (absent(v)) return dflt;
    if (cJSON_IsBool(v)) return cJSON_IsTrue(v);
    char b[80];
    lm_kc_fail(r, LM_ERR_FORMAT, "\"%s\" must be true or false, got %s", key,
               lm_kc_show(v, b, sizeof b));
    return dflt;
}

const char *lm_kc_str(lm_kc_reader *r, const cJSON *o, const char *key, const char *dflt) {
    const cJSON *v = item(o, key);
    if (absent(v)) return dflt;
    if (cJSON_IsString(v)) return v->valuestring;
    char b[80];
    lm_kc_fail(r, LM_ERR_FORMAT, "\"%s\" must be a string, got %s", key,
               lm_kc_show(v, b, sizeof b));
    return dflt;
}

int lm_kc_ints(lm_kc_reader *r, const cJSON *o, const char *key, int max, int64_t *out, int64_t lo,
               int64_t hi) {
    const cJSON *v = item(o, key);
    char b[80];
    if (absent(v)) return 0;
    if (cJSON_IsNumber(v)) {
        if (as_int(v, lo, hi, out)) return 1;
    } else if (cJSON_IsArray(v)) {
        int n = cJSON_GetArraySize(v);
        bool ok = n >= 1 && n <= max;
        for (int i = 0; ok && i < n; i++) ok = as_int(cJSON_GetArrayItem(v, i), lo, hi, &out[i]);
        if (ok) return n;
    }
    lm_kc_fail(r, LM_ERR_FORMAT,
               "\"%s\" must be an integer or a list of 1 to %d integers in [%lld, %lld], got %s",
               key, max, (long long)lo, (long long)hi, lm_kc_show(v, b, sizeof b));
    return -1;
}

void lm_kc_expect_null(lm_kc_reader *r, const cJSON *o, const char *key) {
    const cJSON *v = item(o, key);
    if (absent(v) || cJSON_IsFalse(v) || (cJSON_IsNumber(v) && v->valuedouble == 0)) return;
    char b[80];
    lm_kc_fail(r, LM_ERR_UNSUPPORTED, "\"%s\" = %s is not supported by Lamina", key,
               lm_kc_show(v, b, sizeof b));
}

void lm_kc_expect_str(lm_kc_reader *r, const cJSON *o, const char *key, const char *want) {
    const char *s = lm_kc_str(r, o, key, NULL);
    if (s && strcmp(s, want))
        lm_kc_fail(r, LM_ERR_UNSUPPORTED,
                   "\"%s\" = \"%.80s\" is not supported by Lamina (only \"%s\")", key, s, want);
}

/* Keras 3 serializes a built-in activation as its name; older files (and
 * custom objects) may wrap it: {"class_name": "function", "config": "relu"}. */
lm_activation lm_kc_act(lm_kc_reader *r, const cJSON *o, const char *key, lm_activation dflt) {
    const cJSON *v = item(o, key);
    if (absent(v)) return dflt;
    const cJSON *n = cJSON_IsObject(v) ? item(v, "config") : v;
    if (cJSON_IsObject(n)) n = item(n, "name");
    int a = cJSON_IsString(n) ? lm_activation_from_name(n->valuestring) : -1;
    if (a >= 0) return (lm_activation)a;
    char b[80];
    lm_kc_fail(r, cJSON_IsString(n) ? LM_ERR_UNSUPPORTED : LM_ERR_FORMAT,
               "\"%s\" = %s is not an activation Lamina knows", key, lm_kc_show(v, b, sizeof b));
    return dflt;
}

/* Keras's class names and snake_case aliases; VarianceScaling maps onto the
 * named variants it equals. */
lm_initializer lm_kc_init(lm_kc_reader *r, const cJSON *o, const char *key) {
    lm_initializer in = {.kind = LM_INIT_DEFAULT};
    const cJSON *v = item(o, key);
    char b[80];
    if (absent(v)) return in;
    const char *cls = cJSON_IsString(v) ? v->valuestring : NULL;
    const cJSON *c = NULL;
    if (cJSON_IsObject(v)) {
        const cJSON *cn = item(v, "class_name");
        cls = cJSON_IsString(cn) ? cn->valuestring : NULL;
        c = item(v, "config");
        if (!absent(c) && !cJSON_IsObject(c)) cls = NULL;
    }
    if (!cls) {
        lm_kc_fail(r, LM_ERR_FORMAT, "\"%s\" must be an initializer name or object, got %s", key,
                   lm_kc_show(v, b, sizeof b));
        return in;
    }
    int k = lm_init_from_name(cls);
    if (k < 0 && !strcmp(cls, "VarianceScaling")) {
        double scale = lm_kc_num(r, c, "scale", 1.0);
        const char *mode = lm_kc_str(r, c, "mode", "fan_in");
        const char *dist = lm_kc_str(r, c, "distribution", "truncated_normal");
        bool uni = !strcmp(dist, "uniform"), tn = !strcmp(dist, "truncated_normal");
        if (scale == 1 && !strcmp(mode, "fan_avg"))
            k = uni ? LM_INIT_GLOROT_UNIFORM : tn ? LM_INIT_GLOROT_NORMAL : -1;
        else if (scale == 2 && !strcmp(mode, "fan_in"))
            k = uni ? LM_INIT_HE_UNIFORM : tn ? LM_INIT_HE_NORMAL : -1;
        else if (scale == 1 && !strcmp(mode, "fan_in"))
            k = uni ? LM_INIT_LECUN_UNIFORM : tn ? LM_INIT_LECUN_NORMAL : -1;
    } else if (k < 0 && (!strcmp(cls, "Zeros") || !strcmp(cls, "Ones"))) {
        k = cls[0] == 'Z' ? LM_INIT_ZEROS : LM_INIT_ONES;
    }
    if (k < 0) {
        lm_kc_fail(r, LM_ERR_UNSUPPORTED, "\"%s\": initializer %s is not supported by Lamina", key,
                   lm_kc_show(v, b, sizeof b));
        return in;
    }
    in.kind = (lm_init_kind)k;
    int64_t seed = lm_kc_int(r, c, "seed", -1, 0, INT64_C(9007199254740992));
    if (seed >= 0) in.has_seed = true, in.seed = (uint64_t)seed;
    switch (in.kind) {
    case LM_INIT_CONSTANT:
        in.value = lm_kc_num(r, c, "value", 0.0);
        if (in.value == 0) in.kind = LM_INIT_ZEROS; /* Lamina's Constant(0) is the same */
        break;
    case LM_INIT_RANDOM_NORMAL:
    case LM_INIT_TRUNCATED_NORMAL:
        in.mean = lm_kc_num(r, c, "mean", 0.0);
        in.stddev = lm_kc_num(r, c, "stddev", 0.05);
        if (!(in.stddev > 0))
            lm_kc_fail(r, LM_ERR_UNSUPPORTED, "\"%s\": stddev must be > 0, got %g", key, in.stddev);
        break;
    case LM_INIT_RANDOM_UNIFORM:
        in.minval = lm_kc_num(r, c, "minval", -0.05);
        in.maxval = lm_kc_num(r, c, "maxval", 0.05);
        if (in.minval == 0 && in.maxval == 0) in.kind = LM_INIT_ZEROS;
        break;
    case LM_INIT_ORTHOGONAL:
        in.gain = lm_kc_num(r, c, "gain", 1.0);
        if (in.gain == 0) in.kind = LM_INIT_ZEROS;
        break;
    default:
        break;
    }
    return in;
}

bool lm_kc_reg(lm_kc_reader *r, const cJSON *o, const char *key, lm_regularizer *out) {
    const cJSON *v = item(o, key);
    char b[80];
    memset(out, 0, sizeof *out);
    if (absent(v)) return false;
    const char *cls = cJSON_IsString(v) ? v->valuestring : NULL;
    const cJSON *c = NULL;
    if (cJSON_IsObject(v)) {
        const cJSON *cn = item(v, "class_name");
        cls = cJSON_IsString(cn) ? cn->valuestring : NULL;
        c = item(v, "config");
    }
    /* Keras's defaults: L1(0.01), L2(0.01), L1L2(0, 0); strings take 0.01. */
    if (cls && (!strcmp(cls, "L1") || !strcmp(cls, "l1"))) {
        out->l1 = lm_kc_num(r, c, "l1", 0.01);
    } else if (cls && (!strcmp(cls, "L2") || !strcmp(cls, "l2"))) {
        out->l2 = lm_kc_num(r, c, "l2", 0.01);
    } else if (cls && (!strcmp(cls, "L1L2") || !strcmp(cls, "l1_l2"))) {
        out->l1 = lm_kc_num(r, c, "l1", c ? 0.0 : 0.01);
        out->l2 = lm_kc_num(r, c, "l2", c ? 0.0 : 0.01);
    } else {
        lm_kc_fail(r, cls ? LM_ERR_UNSUPPORTED : LM_ERR_FORMAT,
                   "\"%s\": regularizer %s is not supported by Lamina (L1, L2 and L1L2 are)", key,
                   lm_kc_show(v, b, sizeof b));
        return false;
    }
    if (!(out->l1 >= 0 && out->l2 >= 0)) {
        lm_kc_fail(r, LM_ERR_FORMAT, "\"%s\": regularization factors must be >= 0, got %s", key,
                   lm_kc_show(v, b, sizeof b));
        return false;
    }
    return out->l1 != 0 || out->l2 != 0;
}

lm_padding lm_kc_padding(lm_kc_reader *r, const cJSON *o, const char *key, bool causal_ok) {
    const char *s = lm_kc_str(r, o, key, "valid");
    if (!strcmp(s, "valid")) return LM_PAD_VALID;
    if (!strcmp(s, "same")) return LM_PAD_SAME;
    if (causal_ok && !strcmp(s, "causal")) return LM_PAD_CAUSAL;
    lm_kc_fail(r, LM_ERR_UNSUPPORTED, "\"%s\" = \"%.40s\" is not supported (\"valid\", \"same\"%s)",
               key, s, causal_ok ? ", \"causal\"" : "");
    return LM_PAD_VALID;
}

/* The dtype policy: a name, a DTypePolicy / Policy object or null; Lamina
 * computes in float32 only. want_input accepts the integer input dtypes. */
lm_dtype lm_kc_dtype(lm_kc_reader *r, const cJSON *o, const char *key, bool want_input) {
    const cJSON *v = item(o, key);
    if (absent(v)) return LM_F32;
    const cJSON *n = v;
    if (cJSON_IsObject(v)) n = item(item(v, "config"), "name");
    const char *s = cJSON_IsString(n) ? n->valuestring : NULL;
    if (s && !strcmp(s, "float32")) return LM_F32;
    if (want_input && s && !strcmp(s, "int32")) return LM_I32;
    if (want_input && s && !strcmp(s, "int64")) return LM_I64;
    char b[80];
    lm_kc_fail(r, s ? LM_ERR_UNSUPPORTED : LM_ERR_FORMAT,
               "\"%s\" = %s is not supported: Lamina computes in float32", key,
               lm_kc_show(v, b, sizeof b));
    return LM_F32;
}
