/* CSVLogger (keras/src/callbacks/csv_logger.py): one row per epoch with
 * Python's csv module conventions: header "epoch,<keys sorted>", the val_
 * columns added when the first epoch has none, "NA" for a missing value,
 * floats as repr() of the float32 value, QUOTE_MINIMAL quoting and "\r\n"
 * line ends (csv.excel). The header is written for each fit unless appending
 * to a file that is not empty. */
#include "nn/callbacks/cb_impl.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define CSV_MAX_KEYS (2 * LM_MAX_LOGS)

typedef struct csv_state {
    char *filename;
    char sep;
    bool append, append_header, writing;
    FILE *f;
    int n_keys; /* -1 until the first epoch end */
    char keys[CSV_MAX_KEYS][64];
} csv_state;

/* A field as csv.writer writes it: quoted when it holds the separator, a
 * quote or a line break, with inner quotes doubled. */
static void field(FILE *f, char sep, const char *s) {
    if (!strchr(s, sep) && !strpbrk(s, "\"\r\n")) {
        fputs(s, f);
        return;
    }
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"') fputc('"', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

static void csv_train_begin(lm_callback *cb, lm_model *m, const lm_logs *logs) {
    (void)logs;
    csv_state *s = cb->state;
    cb->err = LM_OK;
    if (s->append) {
        /* A header only for a file that is missing or empty. */
        FILE *r = fopen(s->filename, "rb");
        s->append_header = true;
        if (r) {
            s->append_header = fgetc(r) == EOF;
            fclose(r);
        }
    }
    if (s->f) fclose(s->f);
    if (!(s->f = fopen(s->filename, s->append ? "ab" : "wb"))) {
        lm_cb_fail(cb, m, LM_ERR_IO, "CSVLogger: cannot open %s: %s", s->filename, strerror(errno));
        return;
    }
    s->n_keys = -1;
    s->writing = false;
}

static int cmp_keys(const void *a, const void *b) {
    return strcmp(a, b);
}

static void csv_epoch_end(lm_callback *cb, lm_model *m, int epoch, lm_logs *logs) {
    (void)m;
    csv_state *s = cb->state;
    if (!s->f) return;
    if (s->n_keys < 0) {
        s->n_keys = 0;
        bool has_val = false;
        for (int i = 0; i < logs->n; i++) {
            snprintf(s->keys[s->n_keys++], sizeof s->keys[0], "%s", logs->key[i]);
            has_val = has_val || !strncmp(logs->key[i], "val_", 4);
        }
        qsort(s->keys, (size_t)s->n_keys, sizeof s->keys[0], cmp_keys);
        int n = s->n_keys;
        for (int i = 0; !has_val && i < n; i++) {
            char k[sizeof s->keys[0]];
            snprintf(k, sizeof k, "val_%.48s", s->keys[i]);
            memcpy(s->keys[s->n_keys++], k, sizeof k);
        }
    }
    if (!s->writing) {
        s->writing = true;
        if (s->append_header) {
            field(s->f, s->sep, "epoch");
            for (int i = 0; i < s->n_keys; i++) {
                fputc(s->sep, s->f);
                field(s->f, s->sep, s->keys[i]);
            }
            fputs("\r\n", s->f);
        }
    }
    fprintf(s->f, "%d", epoch);
    for (int i = 0; i < s->n_keys; i++) {
        double v;
        char buf[40];
        fputc(s->sep, s->f);
        field(s->f, s->sep,
              lm_logs_find(logs, s->keys[i], &v) ? lm_pyfloat(lm_log_value(v), buf, sizeof buf)
                                                 : "NA");
    }
    fputs("\r\n", s->f);
    if (fflush(s->f))
        lm_cb_fail(cb, m, LM_ERR_IO, "CSVLogger: cannot write %s: %s", s->filename,
                   strerror(errno));
}

static void csv_close(csv_state *s) {
    if (s->f) fclose(s->f);
    s->f = NULL;
    s->writing = false;
}

static void csv_train_end(lm_callback *cb, lm_model *m, const lm_logs *logs) {
    (void)m, (void)logs;
    csv_close(cb->state);
}

static void csv_destroy(lm_callback *cb) {
    csv_state *s = cb->state;
    csv_close(s);
    free(s->filename);
}

static const lm_callback_vt csv_vt = {.on_train_begin = csv_train_begin,
                                      .on_epoch_end = csv_epoch_end,
                                      .on_train_end = csv_train_end,
                                      .destroy = csv_destroy};

lm_callback *lm_csv_logger_(const char *filename, lm_csv_logger_opts o) {
    if (!filename || !*filename) return NULL;
    lm_callback *cb = lm_cb_alloc(&csv_vt, sizeof(csv_state));
    if (!cb) return NULL;
    csv_state *s = cb->state;
    s->sep = o.separator ? o.separator : ',';
    s->append = o.append;
    s->append_header = true;
    s->n_keys = -1;
    if (!(s->filename = strdup(filename))) {
        lm_callback_free(cb);
        return NULL;
    }
    return cb;
}
