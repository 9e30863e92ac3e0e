/* keras.utils.Progbar (keras/src/utils/progbar.py) as fit, evaluate and
 * predict drive it through ProgbarLogger: every metric is "stateful" (shown
 * as given), the bar is 20 cells wide, redraws are at least 0.05 s apart
 * unless final. On a terminal the bar is redrawn in place with backspaces
 * and "\r", byte for byte as Keras draws it. Keras does that even into files
 * and pipes (its "dynamic display" test holds on every POSIX system); here a
 * file or pipe gets each update as a plain line instead, without ANSI styles,
 * so logs stay readable. */
#include "nn/progbar.h"
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define BAR_WIDTH 20
#define INTERVAL  0.05

struct lm_progbar {
    FILE *f;
    int64_t target; /* <= 0: unknown */
    int verbose;
    double (*now)(void *);
    void *user;
    double start, last_update, after_first_step;
    bool have_first_step;
    int64_t prev_total_width;
    bool dynamic; /* redraw in place (a terminal) or print lines */
    int n_values; /* in order of first appearance */
    char key[LM_MAX_LOGS][48];
    double val[LM_MAX_LOGS];
};

/* time.time() */
static double wall_clock(void *user) {
    (void)user;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

lm_progbar *lm_progbar_new(FILE *f, int64_t target, int verbose) {
    lm_progbar *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->f = f ? f : stdout;
    p->dynamic = isatty(fileno(p->f));
    p->target = target;
    p->verbose = verbose;
    p->now = wall_clock;
    p->start = wall_clock(NULL);
    return p;
}

void lm_progbar_set_clock(lm_progbar *p, double (*now)(void *), void *user) {
    if (!p) return;
    p->now = now ? now : wall_clock;
    p->user = now ? user : NULL;
    p->start = p->now(p->user);
}

void lm_progbar_free(lm_progbar *p) {
    free(p);
}

/* A growing string (messages are short; a failed allocation drops output). */
typedef struct sbuf {
    char *s;
    size_t n, cap;
    bool oom;
} sbuf;

static void sb_putn(sbuf *b, const char *s, size_t n) {
    if (b->oom) return;
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n + 1) cap *= 2;
        char *ns = realloc(b->s, cap);
        if (!ns) {
            b->oom = true;
            return;
        }
        b->s = ns;
        b->cap = cap;
    }
    memcpy(b->s + b->n, s, n);
    b->n += n;
    b->s[b->n] = 0;
}

static void sb_puts(sbuf *b, const char *s) {
    sb_putn(b, s, strlen(s));
}

static void sb_printf(sbuf *b, const char *fmt, ...) LM_PRINTF(2, 3);
static void sb_printf(sbuf *b, const char *fmt, ...) {
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n > 0) sb_putn(b, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

static void sb_repeat(sbuf *b, const char *s, int64_t times) {
    for (int64_t i = 0; i < times; i++) sb_puts(b, s);
}

/* Characters as Python's len() counts them (code points). */
static int64_t py_len(const char *s, size_t n) {
    int64_t c = 0;
    for (size_t i = 0; i < n; i++) c += ((unsigned char)s[i] & 0xC0) != 0x80;
    return c;
}

/* Python's float // and % (floor division, result with the divisor's sign). */
static double py_mod(double a, double b) {
    double m = fmod(a, b);
    if (m != 0 && ((b < 0) != (m < 0))) m += b;
    return m;
}
static double py_floordiv(double a, double b) {
    double m = fmod(a, b), div = (a - m) / b;
    if (m != 0 && ((b < 0) != (m < 0))) div -= 1.0;
    double fl = floor(div);
    if (div - fl > 0.5) fl += 1.0;
    return fl;
}

/* Python's "%d" % float: truncation toward zero. */
static long long py_int(double x) {
    return isfinite(x) ? (long long)x : 0;
}

static int num_digits(int64_t v) {
    int d = 1;
    while (v >= 10) {
        v /= 10;
        d++;
    }
    return d;
}

/* Progbar._format_time */
static void format_time(sbuf *b, double tpu) {
    if (tpu >= 1 || tpu == 0)
        sb_printf(b, " %.0fs/step", tpu);
    else if (tpu >= 1e-3)
        sb_printf(b, " %.0fms/step", tpu * 1000.0);
    else
        sb_printf(b, " %.0fus/step", tpu * 1000000.0);
}

/* f"{v:.4f}" when big enough, else f"{v:.4e}"; Python prints nan without a sign. */
static void format_value(sbuf *b, double v, bool use_fixed) {
    if (isnan(v))
        sb_puts(b, " nan");
    else if (use_fixed)
        sb_printf(b, " %.4f", v);
    else
        sb_printf(b, " %.4e", v);
}

/* Progbar._estimate_step_duration: ignores the first step once there are more. */
static double step_duration(lm_progbar *p, int64_t current, double now) {
    if (!current) return 0;
    double tpu;
    if (p->have_first_step && current > 1)
        tpu = (now - p->after_first_step) / (double)(current - 1);
    else
        tpu = (now - p->start) / (double)current;
    if (current == 1) {
        p->after_first_step = now;
        p->have_first_step = true;
    }
    return tpu;
}

/* Train keys before val_ keys, each group in byte order. */
static bool key_before(const char *x, const char *y) {
    bool vx = !strncmp(x, "val_", 4), vy = !strncmp(y, "val_", 4);
    if (vx != vy) return vy;
    return strcmp(x, y) < 0;
}

/* Keras's JAX trainer hands logs over with sorted keys, the val_ ones added
 * after; the bar keeps keys in order of first appearance. */
static void take_values(lm_progbar *p, const lm_logs *logs) {
    if (!logs) return;
    int idx[LM_MAX_LOGS];
    int n = logs->n < LM_MAX_LOGS ? logs->n : LM_MAX_LOGS;
    for (int i = 0; i < n; i++) { /* insertion sort of the indices */
        int j = i;
        while (j > 0 && key_before(logs->key[i], logs->key[idx[j - 1]])) {
            idx[j] = idx[j - 1];
            j--;
        }
        idx[j] = i;
    }
    for (int i = 0; i < n; i++) {
        const char *key = logs->key[idx[i]];
        int k = 0;
        while (k < p->n_values && strcmp(p->key[k], key)) k++;
        if (k == p->n_values) {
            if (p->n_values == LM_MAX_LOGS) continue;
            snprintf(p->key[k], sizeof p->key[k], "%s", key);
            p->n_values++;
        }
        p->val[k] = logs->val[idx[i]];
    }
}

static void emit(lm_progbar *p, sbuf *b) {
    if (b->oom || !b->s) return;
    if (!p->dynamic) { /* drop ANSI styles: ESC [ ... m */
        size_t o = 0;
        for (size_t i = 0; i < b->n; i++) {
            if (b->s[i] == '\x1b' && i + 1 < b->n && b->s[i + 1] == '[') {
                while (i < b->n && b->s[i] != 'm') i++;
                continue;
            }
            b->s[o++] = b->s[i];
        }
        b->n = o;
    }
    fwrite(b->s, 1, b->n, p->f);
    fflush(p->f);
}

void lm_progbar_set_dynamic(lm_progbar *p, bool dynamic) {
    if (p) p->dynamic = dynamic;
}

static void update_bar(lm_progbar *p, int64_t current, bool finalize, double now, double tpu) {
    if (now - p->last_update < INTERVAL && !finalize) return;
    sbuf bar = {0}, info = {0}, msg = {0};
    int64_t special = 0;
    if (p->target > 0) {
        char fmt[32];
        snprintf(fmt, sizeof fmt, "%%%dlld/%%lld", num_digits(p->target));
        sb_puts(&bar, "\x1b[1m");
        sb_printf(&bar, fmt, (long long)current, (long long)p->target);
        sb_puts(&bar, "\x1b[0m ");
        special += 8;
        int64_t prog_width = (int64_t)(BAR_WIDTH * ((double)current / (double)p->target));
        if (prog_width > 0) {
            sb_puts(&bar, "\x1b[32m");
            sb_repeat(&bar, "━", prog_width);
            sb_puts(&bar, "\x1b[0m");
            special += 9;
        }
        sb_puts(&bar, "\x1b[37m");
        sb_repeat(&bar, "━", BAR_WIDTH - prog_width);
        sb_puts(&bar, "\x1b[0m");
        special += 9;
    } else {
        sb_printf(&bar, "%7lld/Unknown", (long long)current);
    }

    if (p->target > 0 && !finalize) {
        double eta = tpu * (double)(p->target - current);
        if (eta > 3600)
            sb_printf(&info, " \x1b[1m%lld:%02lld:%02lld\x1b[0m", py_int(py_floordiv(eta, 3600)),
                      py_int(py_floordiv(py_mod(eta, 3600), 60)), py_int(py_mod(eta, 60)));
        else if (eta > 60)
            sb_printf(&info, " \x1b[1m%lld:%02lld\x1b[0m", py_int(py_floordiv(eta, 60)),
                      py_int(py_mod(eta, 60)));
        else
            sb_printf(&info, " \x1b[1m%llds\x1b[0m", py_int(eta));
    } else {
        sb_printf(&info, " \x1b[1m%.0fs\x1b[0m", now - p->start);
    }
    special += 8;
    format_time(&info, tpu);
    for (int k = 0; k < p->n_values; k++) {
        sb_printf(&info, " - %s:", p->key[k]);
        format_value(&info, p->val[k], fabs(p->val[k]) > 1e-3);
    }

    if (p->dynamic) {
        sb_repeat(&msg, "\b", p->prev_total_width);
        sb_puts(&msg, "\r");
    }
    if (bar.s) sb_puts(&msg, bar.s);
    if (info.s) sb_puts(&msg, info.s);
    int64_t total_width =
        py_len(bar.s ? bar.s : "", bar.n) + py_len(info.s ? info.s : "", info.n) - special;
    if (p->dynamic && p->prev_total_width > total_width)
        sb_repeat(&msg, " ", p->prev_total_width - total_width);
    if (finalize || !p->dynamic) sb_puts(&msg, "\n");
    emit(p, &msg);
    p->prev_total_width = total_width;
    p->last_update = now;
    free(bar.s);
    free(info.s);
    free(msg.s);
}

/* verbose 2: one line when finished. */
static void update_line(lm_progbar *p, int64_t current, bool finalize, double now, double tpu) {
    if (finalize && p->target > 0) {
        sbuf b = {0};
        char fmt[32];
        snprintf(fmt, sizeof fmt, "%%%dlld/%%lld", num_digits(p->target));
        sb_printf(&b, fmt, (long long)current, (long long)p->target);
        sb_printf(&b, " - %.0fs -", now - p->start);
        format_time(&b, tpu);
        for (int k = 0; k < p->n_values; k++) {
            sb_printf(&b, " - %s:", p->key[k]);
            format_value(&b, p->val[k], p->val[k] > 1e-3); /* no abs() here in Keras */
        }
        sb_puts(&b, "\n");
        emit(p, &b);
        free(b.s);
    }
    p->last_update = now;
}

void lm_progbar_update(lm_progbar *p, int64_t current, const lm_logs *logs, bool finalize) {
    if (!p) return;
    /* ProgbarLogger updates a verbose-2 bar only to finalize it, so the
     * per-step time is the whole epoch over its steps. */
    if (p->verbose == 2 && !finalize) return;
    take_values(p, logs);
    double now = p->now(p->user);
    double tpu = step_duration(p, current, now);
    if (p->verbose == 1)
        update_bar(p, current, finalize, now, tpu);
    else if (p->verbose == 2)
        update_line(p, current, finalize, now, tpu);
}
