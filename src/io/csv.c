/* CSV reader: the whole file is read into memory, then split into records
 * by an RFC 4180 state machine that checks every index against the length
 * (the buffer is never assumed NUL-terminated: files may contain NULs). */
#include "lamina/csv.h"
#include "core/core.h"
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Longest numeric cell accepted (after trimming); longer is "not a number". */
#define CELL_MAX 255

typedef struct field {
    size_t off, len; /* the field's text (inside the quotes when quoted) */
    int64_t line;    /* where it starts */
    bool escaped;    /* holds "" pairs to collapse */
} field;

typedef struct parser {
    lm_ctx *ctx;
    const char *path;
    const char *buf;
    size_t len, pos;
    int64_t line; /* 1-based line of buf[pos] */
    char sep;
    field *f; /* fields of the current record */
    int nf, capf;
} parser;

/* Reads the whole file; *out is malloc'd (at least 1 byte). */
static lm_status read_all(lm_ctx *ctx, const char *path, char **out, size_t *n) {
    errno = 0;
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return lm_fail(ctx, LM_ERR_IO, "csv: cannot open %s: %s", path,
                       errno ? strerror(errno) : "error");
    size_t cap = 1 << 16, got = 0;
    char *buf = malloc(cap);
    lm_status st = buf ? LM_OK : lm_fail(ctx, LM_ERR_OOM, "csv: %s: out of memory", path);
    while (st == LM_OK) {
        if (got == cap) {
            char *nb = cap > SIZE_MAX / 2 ? NULL : realloc(buf, cap * 2);
            if (!nb) {
                st = lm_fail(ctx, LM_ERR_OOM, "csv: %s: out of memory", path);
                break;
            }
            buf = nb;
            cap *= 2;
        }
        size_t r = fread(buf + got, 1, cap - got, fp);
        got += r;
        if (r == 0) {
            if (ferror(fp)) st = lm_fail(ctx, LM_ERR_IO, "csv: cannot read %s", path);
            break;
        }
    }
    fclose(fp);
    if (st != LM_OK) {
        free(buf);
        return st;
    }
    /* Trim to the exact size: no slack to hide an overread from the sanitizers. */
    char *exact = realloc(buf, got ? got : 1);
    *out = exact ? exact : buf;
    *n = got;
    return LM_OK;
}

static bool is_blank(char c) {
    return c == ' ' || c == '\t';
}

/* At a line end ("\n" or "\r\n") or the end of the buffer? */
static bool at_eol(const parser *p, size_t i) {
    if (i >= p->len) return true;
    return p->buf[i] == '\n' || (p->buf[i] == '\r' && (i + 1 >= p->len || p->buf[i + 1] == '\n'));
}

/* Steps over the line end at pos (if any). */
static void skip_eol(parser *p) {
    if (p->pos < p->len && p->buf[p->pos] == '\r') p->pos++;
    if (p->pos < p->len && p->buf[p->pos] == '\n') {
        p->pos++;
        p->line++;
    }
}

/* Skips blank lines (empty or spaces only); false at the end of the buffer. */
static bool skip_blank_lines(parser *p) {
    while (p->pos < p->len) {
        size_t i = p->pos;
        while (i < p->len && is_blank(p->buf[i])) i++;
        if (!at_eol(p, i)) return true;
        p->pos = i;
        if (p->pos >= p->len) return false;
        skip_eol(p);
    }
    return false;
}

static lm_status add_field(parser *p, field f) {
    if (p->nf == p->capf) {
        int cap = p->capf ? p->capf * 2 : 16;
        field *nf = cap > 0 ? realloc(p->f, (size_t)cap * sizeof *nf) : NULL;
        if (!nf) return lm_fail(p->ctx, LM_ERR_OOM, "csv: %s: out of memory", p->path);
        p->f = nf;
        p->capf = cap;
    }
    p->f[p->nf++] = f;
    return LM_OK;
}

/* Splits the record at pos into p->f; *row_line is its first line. */
static lm_status parse_record(parser *p, int64_t *row_line) {
    p->nf = 0;
    *row_line = p->line;
    for (;;) {
        field f = {.line = p->line};
        size_t i = p->pos;
        while (i < p->len && is_blank(p->buf[i])) i++; /* spaces before an opening quote */
        if (i < p->len && p->buf[i] == '"') {
            size_t j = i + 1;
            f.off = j;
            for (;;) {
                if (j >= p->len)
                    return lm_fail(p->ctx, LM_ERR_FORMAT,
                                   "csv: %s:%lld: unterminated quoted field (no closing '\"' "
                                   "before the end of the file)",
                                   p->path, (long long)f.line);
                if (p->buf[j] == '"') {
                    if (j + 1 < p->len && p->buf[j + 1] == '"') {
                        f.escaped = true;
                        j += 2;
                        continue;
                    }
                    break;
                }
                if (p->buf[j] == '\n') p->line++;
                j++;
            }
            f.len = j - f.off;
            j++; /* the closing quote */
            while (j < p->len && is_blank(p->buf[j])) j++;
            if (!at_eol(p, j) && p->buf[j] != p->sep)
                return lm_fail(p->ctx, LM_ERR_FORMAT,
                               "csv: %s:%lld: unexpected character '%c' after a closing quote "
                               "(expected '%c' or the end of the line)",
                               p->path, (long long)p->line,
                               p->buf[j] >= 32 && p->buf[j] < 127 ? p->buf[j] : '?', p->sep);
            p->pos = j;
        } else {
            size_t j = p->pos;
            while (!at_eol(p, j) && p->buf[j] != p->sep) j++;
            f.off = p->pos;
            f.len = j - p->pos;
            p->pos = j;
        }
        lm_status st = add_field(p, f);
        if (st != LM_OK) return st;
        if (p->pos < p->len && p->buf[p->pos] == p->sep) {
            p->pos++;
            continue;
        }
        skip_eol(p);
        return LM_OK;
    }
}

/* Copies field f into dst (cap bytes with the NUL), collapsing "" pairs;
 * returns the full unescaped length (may exceed cap - 1: then truncated). */
static size_t field_text(const parser *p, const field *f, char *dst, size_t cap) {
    size_t n = 0;
    for (size_t i = 0; i < f->len; i++) {
        char c = p->buf[f->off + i];
        if (f->escaped && c == '"') i++; /* the second quote of a pair */
        if (n + 1 < cap) dst[n] = c;
        n++;
    }
    if (cap) dst[n < cap ? n : cap - 1] = 0;
    return n;
}

/* Printable excerpt of a cell for messages. */
static void excerpt(const char *s, size_t n, char *out, size_t cap) {
    size_t k = 0;
    for (size_t i = 0; i < n && k + 4 < cap; i++) {
        unsigned char c = (unsigned char)s[i];
        out[k++] = c >= 32 && c < 127 ? (char)c : '?';
    }
    if (k + 4 >= cap && n > k) {
        memcpy(out + k, "...", 3);
        k += 3;
    }
    out[k] = 0;
}

/* Parses a numeric cell; fails with the line, column and text. */
static lm_status cell_value(parser *p, const field *f, const char *colname, int col, float *out) {
    char cell[CELL_MAX + 1], shown[48];
    size_t n = field_text(p, f, cell, sizeof cell);
    size_t b = 0, e = n < CELL_MAX ? n : CELL_MAX;
    while (b < e && is_blank(cell[b])) b++;
    while (e > b && is_blank(cell[e - 1])) e--;
    if (b == e && n <= CELL_MAX)
        return lm_fail(p->ctx, LM_ERR_FORMAT, "csv: %s:%lld: column %s%s%s(index %d) is empty",
                       p->path, (long long)f->line, colname ? "\"" : "", colname ? colname : "",
                       colname ? "\" " : "", col);
    char *end = NULL;
    double v = 0;
    if (n <= CELL_MAX) {
        cell[e] = 0;
        v = strtod(cell + b, &end);
    }
    if (n > CELL_MAX || end != cell + e) {
        excerpt(cell + b, (n > CELL_MAX ? CELL_MAX : e) - b, shown, sizeof shown);
        return lm_fail(p->ctx, LM_ERR_FORMAT,
                       "csv: %s:%lld: column %s%s%s(index %d): \"%s\" is not a number", p->path,
                       (long long)f->line, colname ? "\"" : "", colname ? colname : "",
                       colname ? "\" " : "", col, shown);
    }
    *out = (float)v;
    return LM_OK;
}

/* Resolves the selection into sel[0..nsel) (column indices); names from the header. */
static lm_status select_columns(parser *p, const lm_csv_opts *o, char **names, int ncols, int **sel,
                                int *nsel) {
    int n = o->n_columns > 0 ? o->n_columns : o->n_indices > 0 ? o->n_indices : ncols;
    *sel = malloc((size_t)(n > 0 ? n : 1) * sizeof **sel);
    if (!*sel) return lm_fail(p->ctx, LM_ERR_OOM, "csv: %s: out of memory", p->path);
    *nsel = n;
    for (int k = 0; k < n; k++) {
        if (o->n_columns > 0) {
            const char *want = o->columns[k];
            int found = -1;
            for (int c = 0; c < ncols && found < 0; c++)
                if (want && !strcmp(names[c], want)) found = c;
            if (found < 0) {
                char list[512] = "";
                size_t used = 0;
                for (int c = 0; c < ncols && used + 8 < sizeof list; c++) {
                    int w = snprintf(list + used, sizeof list - used, "%s\"%s\"", c ? ", " : "",
                                     names[c]);
                    if (w > 0) used += (size_t)w;
                }
                return lm_fail(p->ctx, LM_ERR_ARG,
                               "csv: %s: no column named \"%s\"; the header "
                               "names %d: %s",
                               p->path, want ? want : "(null)", ncols, list);
            }
            (*sel)[k] = found;
        } else if (o->n_indices > 0) {
            int c = o->indices[k];
            if (c < 0 || c >= ncols)
                return lm_fail(p->ctx, LM_ERR_ARG,
                               "csv: %s: column index %d is out of range: the rows have %d "
                               "columns (0 to %d)",
                               p->path, c, ncols, ncols - 1);
            (*sel)[k] = c;
        } else {
            (*sel)[k] = k;
        }
    }
    return LM_OK;
}

static lm_status check_opts(lm_ctx *ctx, const char *path, const lm_csv_opts *o) {
    if (!path) return lm_fail(ctx, LM_ERR_ARG, "csv: path is NULL");
    if (o->n_columns < 0 || o->n_indices < 0 || (o->n_columns > 0 && !o->columns) ||
        (o->n_indices > 0 && !o->indices))
        return lm_fail(ctx, LM_ERR_ARG,
                       "csv: %s: column selection needs a list and a positive count", path);
    if (o->n_columns > 0 && o->n_indices > 0)
        return lm_fail(ctx, LM_ERR_ARG, "csv: %s: select columns by names or by indices, not both",
                       path);
    if (o->n_columns > 0 && o->no_header)
        return lm_fail(ctx, LM_ERR_ARG,
                       "csv: %s: columns selected by name need a header line (no_header is set)",
                       path);
    if (o->sep == '"' || o->sep == '\n' || o->sep == '\r')
        return lm_fail(ctx, LM_ERR_ARG, "csv: %s: the separator cannot be a quote or a line break",
                       path);
    return LM_OK;
}

lm_tensor *lm_csv_load(lm_ctx *ctx, const char *path, lm_csv_opts o) {
    if (!ctx) return NULL;
    if (check_opts(ctx, path, &o) != LM_OK) return NULL;
    parser p = {.ctx = ctx, .path = path, .line = 1, .sep = o.sep ? o.sep : ','};
    char *buf = NULL, **names = NULL;
    int *sel = NULL, nsel = 0, ncols = 0;
    float *vals = NULL;
    size_t nvals = 0, capv = 0;
    int64_t rows = 0, first_line = 1;
    lm_tensor *t = NULL;
    lm_status st = read_all(ctx, path, &buf, &p.len);
    if (st != LM_OK) return NULL;
    p.buf = buf;
    if (p.len >= 3 && !memcmp(buf, "\xEF\xBB\xBF", 3)) p.pos = 3; /* UTF-8 byte order mark */
    if (!skip_blank_lines(&p)) {
        lm_fail(ctx, LM_ERR_FORMAT, "csv: %s: empty file (no header and no rows)", path);
        goto done;
    }
    /* The first record sets the column count, and names them unless no_header. */
    if ((st = parse_record(&p, &first_line)) != LM_OK) goto done;
    ncols = p.nf;
    if (!o.no_header) {
        names = calloc((size_t)ncols, sizeof *names);
        if (!names) {
            lm_fail(ctx, LM_ERR_OOM, "csv: %s: out of memory", path);
            goto done;
        }
        for (int c = 0; c < ncols; c++) {
            size_t n = field_text(&p, &p.f[c], NULL, 0);
            if (!(names[c] = malloc(n + 1))) {
                lm_fail(ctx, LM_ERR_OOM, "csv: %s: out of memory", path);
                goto done;
            }
            field_text(&p, &p.f[c], names[c], n + 1);
        }
    }
    if ((st = select_columns(&p, &o, names, ncols, &sel, &nsel)) != LM_OK) goto done;
    bool first_is_data = o.no_header;
    while (first_is_data || skip_blank_lines(&p)) {
        int64_t line = first_line;
        if (!first_is_data && (st = parse_record(&p, &line)) != LM_OK) goto done;
        first_is_data = false;
        if (p.nf != ncols) {
            lm_fail(ctx, LM_ERR_FORMAT,
                    "csv: %s:%lld: ragged row: %d fields where the %s (line %lld) has %d", path,
                    (long long)line, p.nf, o.no_header ? "first row" : "header",
                    (long long)first_line, ncols);
            goto done;
        }
        if (nvals + (size_t)nsel > capv) {
            size_t cap = capv ? capv * 2 : 1024;
            while (cap < nvals + (size_t)nsel) cap *= 2;
            float *nv = realloc(vals, cap * sizeof *nv);
            if (!nv) {
                lm_fail(ctx, LM_ERR_OOM, "csv: %s: out of memory at row %lld", path,
                        (long long)rows + 1);
                goto done;
            }
            vals = nv;
            capv = cap;
        }
        for (int k = 0; k < nsel; k++) {
            int c = sel[k];
            if (cell_value(&p, &p.f[c], names ? names[c] : NULL, c, &vals[nvals + (size_t)k]))
                goto done;
        }
        nvals += (size_t)nsel;
        rows++;
    }
    t = lm_tensor_new(ctx, LM_F32, LM_SHAPE(rows, nsel));
    if (t && nvals) memcpy(lm_tensor_data(t), vals, nvals * sizeof *vals);
done:
    if (names)
        for (int c = 0; c < ncols; c++) free(names[c]);
    free(names);
    free(sel);
    free(vals);
    free(p.f);
    free(buf);
    return t;
}
