/* Callback objects and the helpers the built-in callbacks share: Keras's
 * MonitorCallback logic, Python's float repr and str.format for checkpoint
 * paths, and mkdir -p. */
#include "nn/callbacks/cb_impl.h"
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

lm_callback *lm_cb_alloc(const lm_callback_vt *vt, size_t state_size) {
    lm_callback *cb = calloc(1, sizeof *cb);
    if (!cb) return NULL;
    cb->vt = vt;
    if (!(cb->state = calloc(1, state_size ? state_size : 1))) {
        free(cb);
        return NULL;
    }
    return cb;
}

void lm_callback_free(lm_callback *cb) {
    if (!cb) return;
    if (cb->vt && cb->vt->destroy) cb->vt->destroy(cb);
    free(cb->state);
    free(cb);
}

lm_status lm_cb_fail(lm_callback *cb, lm_model *m, lm_status s, const char *fmt, ...) {
    /* Formatted apart first: the arguments may be the context's own message. */
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    lm_fail(m->ctx, s, "%s", msg);
    if (!cb->err) cb->err = s;
    return s;
}

const char *lm_logs_keys_str(const lm_logs *l, char *buf, size_t n) {
    size_t k = 0;
    buf[0] = 0;
    for (int i = 0; i < l->n && k < n; i++)
        k += (size_t)snprintf(buf + k, n - k, "%s%s", i ? "," : "", l->key[i]);
    return buf;
}

void lm_cb_warn(bool *warned, const char *fmt, ...) {
    if (*warned) return;
    *warned = true;
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "UserWarning: ");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

lm_status lm_cb_set_lr(lm_callback *cb, lm_model *m, lm_optimizer *opt, double lr,
                       const char *cls) {
    if (opt->schedule)
        return lm_cb_fail(cb, m, LM_ERR_STATE,
                          "%s: this optimizer was created with a learning rate schedule, hence its "
                          "learning rate is not settable. If you need the learning rate to be "
                          "settable, create the optimizer with a float learning_rate.",
                          cls);
    if (lm_optimizer_set_learning_rate(opt, lr))
        return lm_cb_fail(cb, m, LM_ERR_ARG,
                          "%s: invalid learning rate %g; it must be a finite "
                          "number >= 0",
                          cls, lr);
    return LM_OK;
}

/* ---- MonitorCallback ---- */

void lm_monitor_init(lm_monitor *mo, const char *monitor, lm_monitor_mode mode, double min_delta) {
    snprintf(mo->name, sizeof mo->name, "%s", monitor && *monitor ? monitor : "val_loss");
    /* Keras warns about an unknown mode and falls back to auto. */
    mo->mode = mode == LM_MODE_MIN || mode == LM_MODE_MAX ? mode : LM_MODE_AUTO;
    mo->min_delta = fabs(min_delta);
    mo->dir = 0;
}

/* Keras metrics whose _direction is "up"; the others (errors) go down. */
static bool metric_up(const char *name) {
    return strstr(name, "accuracy") || strstr(name, "precision") || strstr(name, "recall") ||
           strstr(name, "auc");
}

lm_status lm_monitor_resolve(lm_monitor *mo, lm_callback *cb, lm_model *m, const char *cls) {
    if (mo->dir) return LM_OK;
    if (mo->mode == LM_MODE_MIN)
        mo->dir = -1;
    else if (mo->mode == LM_MODE_MAX)
        mo->dir = 1;
    else {
        const char *base = strncmp(mo->name, "val_", 4) ? mo->name : mo->name + 4;
        if (!strcmp(base, "loss")) mo->dir = -1;
        /* Otherwise the direction of the compiled metric of that name. */
        const lm_train *t = m->train;
        for (int i = 1; t && i < t->n_names; i++)
            if (!strcmp(t->metric_names[i], base)) mo->dir = metric_up(base) ? 1 : -1;
    }
    if (!mo->dir)
        return lm_cb_fail(cb, m, LM_ERR_ARG,
                          "%s callback received monitor=%s, but Lamina cannot tell whether that "
                          "metric should be maximized or minimized. Pass mode=LM_MODE_MAX in order "
                          "to monitor based on the highest metric value, or mode=LM_MODE_MIN in "
                          "order to use the lowest value.",
                          cls, mo->name);
    if (mo->dir < 0) mo->min_delta = -mo->min_delta;
    return LM_OK;
}

bool lm_monitor_better(const lm_monitor *mo, double current, bool has_ref, double ref) {
    if (!has_ref) return true;
    float a = (float)(current - mo->min_delta), b = (float)ref;
    return mo->dir > 0 ? a > b : a < b;
}

/* ---- Python number formatting ---- */

char *lm_pyfloat(double v, char *buf, size_t n) {
    if (isnan(v)) {
        snprintf(buf, n, "nan");
        return buf;
    }
    if (isinf(v)) {
        snprintf(buf, n, v < 0 ? "-inf" : "inf");
        return buf;
    }
    /* Shortest digits that read back as v, as repr() picks them. */
    char e[40];
    for (int p = 0; p < 17; p++) {
        snprintf(e, sizeof e, "%.*e", p, v);
        if (strtod(e, NULL) == v) break;
    }
    char digits[24];
    int nd = 0;
    const char *s = e;
    bool neg = *s == '-';
    if (neg) s++;
    for (; *s && *s != 'e'; s++)
        if (*s != '.') digits[nd++] = *s;
    digits[nd] = 0;
    int exp10 = atoi(s + 1);
    char out[64];
    size_t k = 0;
    if (neg) out[k++] = '-';
    if (exp10 >= -4 && exp10 < 16) {
        if (exp10 < 0) {
            k += (size_t)snprintf(out + k, sizeof out - k, "0.");
            for (int i = 0; i < -exp10 - 1; i++) out[k++] = '0';
            k += (size_t)snprintf(out + k, sizeof out - k, "%s", digits);
        } else {
            for (int i = 0; i <= exp10; i++) out[k++] = i < nd ? digits[i] : '0';
            out[k++] = '.';
            if (nd > exp10 + 1)
                k += (size_t)snprintf(out + k, sizeof out - k, "%s", digits + exp10 + 1);
            else
                out[k++] = '0';
        }
        out[k] = 0;
    } else {
        out[k++] = digits[0];
        if (nd > 1) k += (size_t)snprintf(out + k, sizeof out - k, ".%s", digits + 1);
        snprintf(out + k, sizeof out - k, "e%c%02d", exp10 < 0 ? '-' : '+', abs(exp10));
    }
    snprintf(buf, n, "%s", out);
    return buf;
}

/* Appends s to out (bounded). */
static void put(char *out, size_t n, size_t *k, const char *s) {
    size_t len = strlen(s);
    if (*k + len >= n) len = *k < n ? n - 1 - *k : 0;
    memcpy(out + *k, s, len);
    *k += len;
    out[*k < n ? *k : n - 1] = 0;
}

bool lm_logs_find(const lm_logs *l, const char *key, double *v) {
    for (int i = 0; l && i < l->n; i++)
        if (!strcmp(l->key[i], key)) {
            *v = l->val[i];
            return true;
        }
    return false;
}

/* One replacement field: an int (epoch) or a float (a log value) formatted
 * with a Python format spec: [sign][0][width][.precision][type]. */
static lm_status format_field(bool is_int, long long iv, double fv, const char *spec, char *res,
                              size_t rn, char *err, size_t errn) {
    const char *s = spec;
    char flags[4] = {0};
    int nf = 0;
    if (*s == '+' || *s == '-' || *s == ' ') {
        if (*s != '-') flags[nf++] = *s;
        s++;
    }
    if (*s == '0') flags[nf++] = *s++;
    int width = 0, prec = -1;
    while (*s >= '0' && *s <= '9') width = width * 10 + (*s++ - '0');
    if (*s == '.') {
        prec = 0;
        s++;
        while (*s >= '0' && *s <= '9') prec = prec * 10 + (*s++ - '0');
    }
    char type = *s ? *s++ : 0;
    if (*s || (type && !strchr("dfFeEgG%", type))) {
        snprintf(err, errn, "Invalid format specifier '%s' for object of type '%s'", spec,
                 is_int ? "int" : "float");
        return LM_ERR_ARG;
    }
    char fmt[32];
    if (type == 'd' || (is_int && !type)) {
        if (!is_int) {
            snprintf(err, errn, "Unknown format code 'd' for object of type 'float'");
            return LM_ERR_ARG;
        }
        snprintf(fmt, sizeof fmt, "%%%s*lld", flags);
        snprintf(res, rn, fmt, width, iv);
        return LM_OK;
    }
    double v = is_int ? (double)iv : fv;
    if (!type && prec < 0) { /* str(float) */
        char r[40];
        lm_pyfloat(v, r, sizeof r);
        snprintf(res, rn, "%*s", width, r);
        return LM_OK;
    }
    bool pct = type == '%';
    if (pct) v *= 100;
    char c = pct ? 'f' : type ? type : 'g';
    snprintf(fmt, sizeof fmt, "%%%s*.*%c%s", flags, c, pct ? "%%" : "");
    snprintf(res, rn, fmt, width, prec < 0 ? 6 : prec, v);
    return LM_OK;
}

lm_status lm_format_path(const char *fmt, int epoch, const lm_logs *logs, char *out, size_t n,
                         char *err, size_t errn) {
    size_t k = 0;
    out[0] = 0;
    for (const char *p = fmt; *p;) {
        if ((p[0] == '{' && p[1] == '{') || (p[0] == '}' && p[1] == '}')) {
            char c[2] = {p[0], 0};
            put(out, n, &k, c);
            p += 2;
            continue;
        }
        if (*p == '}') {
            snprintf(err, errn, "Single '}' encountered in format string");
            return LM_ERR_ARG;
        }
        if (*p != '{') {
            char c[2] = {*p++, 0};
            put(out, n, &k, c);
            continue;
        }
        const char *close = strchr(p, '}');
        if (!close) {
            snprintf(err, errn, "Single '{' encountered in format string");
            return LM_ERR_ARG;
        }
        char field[128];
        snprintf(field, sizeof field, "%.*s", (int)(close - p - 1), p + 1);
        char *colon = strchr(field, ':');
        const char *spec = "";
        if (colon) {
            *colon = 0;
            spec = colon + 1;
        }
        double v = 0;
        bool is_int = !strcmp(field, "epoch");
        if (!is_int && !lm_logs_find(logs, field, &v)) {
            snprintf(err, errn, "'%s'", field);
            return LM_ERR_ARG;
        }
        char res[128];
        if (format_field(is_int, epoch, lm_log_value(v), spec, res, sizeof res, err, errn))
            return LM_ERR_ARG;
        put(out, n, &k, res);
        p = close + 1;
    }
    return LM_OK;
}

lm_status lm_mkdirs(lm_ctx *ctx, const char *path, bool dir_of_file) {
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", path);
    if (dir_of_file) {
        char *slash = strrchr(buf, '/');
        if (!slash) return LM_OK;
        *slash = 0;
    }
    size_t len = strlen(buf);
    for (size_t i = 1; i <= len; i++) {
        if (buf[i] != '/' && buf[i] != 0) continue;
        char c = buf[i];
        buf[i] = 0;
        if (mkdir(buf, 0777) && errno != EEXIST)
            return lm_fail(ctx, LM_ERR_IO, "cannot create directory %s: %s", buf, strerror(errno));
        buf[i] = c;
    }
    return LM_OK;
}
