/* The --data sources of fit, evaluate and predict (MNIST, NPY pairs, NPZ
 * archives, CSV columns), and fitting arrays to a model's input and label
 * conventions as Keras users prepare them by hand. */
#include "cli.h"
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

const char cli_data_help[] =
    "Data (--data SOURCE):\n"
    "  mnist              keras.datasets.mnist, pixels scaled to [0, 1]; the training\n"
    "                     split for fit, the test split for evaluate and predict\n"
    "                     (mnist:train or mnist:test picks one); labels one-hot or\n"
    "                     class indices as the loss needs\n"
    "  X.npy,Y.npy        inputs and labels in two .npy files\n"
    "  FILE.npz           arrays x and y, else x_train/y_train (fit) or x_test/y_test\n"
    "                     (evaluate, predict); FILE.npz:train or FILE.npz:test picks one\n"
    "  FILE.csv           columns --x-cols and --y-cols (header names, or 0-based\n"
    "                     indices); --x-cols defaults to every column not in --y-cols;\n"
    "                     --no-header when the first line is data\n"
    "Inputs are reshaped to the model's input shape when only the layout differs\n"
    "(e.g. (28, 28) images for an input of (784,)).\n";

void cli_data_free(cli_data *d) {
    lm_tensor_free(d->x);
    lm_tensor_free(d->y);
    d->x = d->y = NULL;
}

/* A new handle on t (the archive's copy goes when the archive is freed). */
static lm_tensor *keep(lm_tensor *t) {
    return t ? lm_tensor_reshape(t, lm_tensor_shape(t)) : NULL;
}

static int load_mnist(const char *cmd, lm_ctx *ctx, cli_split split, cli_data *d) {
    lm_tensor *xtr, *ytr, *xte, *yte;
    if (lm_mnist_load_data(ctx, &xtr, &ytr, &xte, &yte) != LM_OK)
        return cli_fail(cmd, "mnist: %s", lm_ctx_error(ctx));
    lm_tensor *x8 = split == CLI_SPLIT_TRAIN ? xtr : xte;
    d->y = split == CLI_SPLIT_TRAIN ? ytr : yte;
    lm_tensor_free(split == CLI_SPLIT_TRAIN ? yte : ytr);
    lm_tensor_free(split == CLI_SPLIT_TRAIN ? xte : xtr);
    /* x.astype("float32") / 255, as the Keras examples do. */
    d->x = lm_tensor_cast(x8, LM_F32);
    lm_tensor_free(x8);
    if (!d->x) return cli_fail(cmd, "mnist: out of memory");
    float *p = lm_tensor_f32(d->x);
    for (int64_t i = 0, n = lm_tensor_numel(d->x); i < n; i++) p[i] /= 255.0f;
    return CLI_OK;
}

static int load_npy(const char *cmd, lm_ctx *ctx, const char *path, lm_tensor **out) {
    if (!(*out = lm_npy_load(ctx, path))) return cli_fail(cmd, "%s", lm_ctx_error(ctx));
    return CLI_OK;
}

/* "FILE.npz" or "FILE.npz:train"/":test" (when FILE.npz itself holds no such suffix). */
static int load_npz(const char *cmd, lm_ctx *ctx, const char *spec, cli_split split, bool need_y,
                    cli_data *d) {
    char path[4096];
    snprintf(path, sizeof path, "%s", spec);
    bool forced = false;
    char *colon = strrchr(path, ':');
    if (colon && (!strcmp(colon, ":train") || !strcmp(colon, ":test"))) {
        split = !strcmp(colon, ":train") ? CLI_SPLIT_TRAIN : CLI_SPLIT_TEST;
        *colon = 0;
        forced = true;
    }
    lm_npz *z = lm_npz_load(ctx, path);
    if (!z) return cli_fail(cmd, "%s", lm_ctx_error(ctx));
    const char *xn = "x", *yn = "y";
    if (forced || !lm_npz_get(z, "x")) {
        xn = split == CLI_SPLIT_TRAIN ? "x_train" : "x_test";
        yn = split == CLI_SPLIT_TRAIN ? "y_train" : "y_test";
    }
    d->x = keep(lm_npz_get(z, xn));
    d->y = keep(lm_npz_get(z, yn));
    int rc = CLI_OK;
    if (!d->x || (need_y && !d->y)) {
        char names[512] = "";
        for (int i = 0; i < lm_npz_count(z) && strlen(names) < 400; i++)
            snprintf(names + strlen(names), sizeof names - strlen(names), "%s%s", i ? ", " : "",
                     lm_npz_name(z, i));
        rc = cli_fail(cmd, "%s has no array '%s' (it holds: %s); expected x and y, or %s and %s",
                      path, d->x ? yn : xn, *names ? names : "nothing", xn, yn);
        cli_data_free(d);
    }
    lm_npz_free(z);
    return rc;
}

/* ---- CSV ---- */

/* The first line's fields (the header), read with RFC 4180 quoting; at most
 * max of them. Returns the count, or -1 with a message. */
static int csv_header(const char *cmd, const char *path, char sep, char **names, int max) {
    FILE *f = fopen(path, "rb");
    if (!f) return cli_fail(cmd, "cannot open %s: %s", path, strerror(errno)), -1;
    int n = 0, c;
    char field[256];
    size_t len = 0;
    bool quoted = false, bom = true, at_start = true, done = false;
    unsigned char boms[3] = {0xEF, 0xBB, 0xBF};
    int bi = 0;
    while (!done && (c = fgetc(f)) != EOF) {
        if (bom && bi < 3 && c == boms[bi]) {
            if (++bi == 3) bom = false;
            continue;
        }
        bom = false;
        if (quoted) {
            if (c == '"') {
                int d = fgetc(f);
                if (d != '"') {
                    quoted = false;
                    if (d != EOF) ungetc(d, f);
                    continue;
                }
            }
        } else if (c == '"' && len == 0) {
            quoted = true;
            continue;
        } else if (c == sep || c == '\n' || c == '\r') {
            if (c == '\r' || c == '\n') {
                if (at_start && len == 0 && n == 0) continue; /* blank lines before the header */
                done = true;
            }
            if (n == max) break;
            field[len] = 0;
            if (!(names[n++] = strdup(field))) break;
            len = 0;
            continue;
        }
        at_start = false;
        if (len + 1 < sizeof field) field[len++] = (char)c;
    }
    if (!done && n < max && (len > 0 || n > 0)) {
        field[len] = 0;
        names[n++] = strdup(field);
    }
    fclose(f);
    if (n == 0) return cli_fail(cmd, "%s: empty file (no header line)", path), -1;
    return n;
}

/* Resolves "a,b" or "0,3" against the header; returns how many, or -1. */
static int resolve_cols(const char *cmd, const char *path, const char *opt, const char *spec,
                        char **names, int ncol, bool no_header, int *out, int max) {
    int n = 0;
    char buf[256];
    while (*spec) {
        size_t len = strcspn(spec, ",");
        if (len == 0 || len >= sizeof buf)
            return cli_usage(cmd, "option '--%s': bad column list", opt), -1;
        memcpy(buf, spec, len);
        buf[len] = 0;
        spec += len + (spec[len] == ',');
        bool digits = true;
        for (size_t i = 0; i < len; i++) digits = digits && isdigit((unsigned char)buf[i]);
        int idx = -1;
        for (int i = 0; i < ncol && !no_header && idx < 0; i++)
            if (!strcmp(names[i], buf)) idx = i;
        if (idx < 0 && digits) {
            long v = strtol(buf, NULL, 10);
            if (v >= ncol) {
                cli_fail(cmd, "option '--%s': column %ld is out of range: %s has %d columns", opt,
                         v, path, ncol);
                return -1;
            }
            idx = (int)v;
        }
        if (idx < 0) {
            char list[512] = "";
            for (int i = 0; i < ncol && strlen(list) < 400; i++)
                snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", i ? ", " : "",
                         names[i]);
            cli_fail(cmd, "option '--%s': %s has no column '%s' (columns: %s)", opt, path, buf,
                     list);
            return -1;
        }
        if (n == max) return cli_usage(cmd, "option '--%s': too many columns", opt), -1;
        out[n++] = idx;
    }
    return n;
}

#define CSV_MAX_COLS 4096

static int load_csv(const char *cmd, lm_ctx *ctx, const char *path, const cli_csv *csv, bool need_y,
                    cli_data *d) {
    if (need_y && (!csv || !csv->y_cols))
        return cli_usage(cmd, "CSV data %s needs --y-cols (the label columns)", path);
    char **names = calloc(CSV_MAX_COLS, sizeof *names);
    int *xi = malloc(CSV_MAX_COLS * sizeof *xi), *yi = malloc(CSV_MAX_COLS * sizeof *yi);
    int rc = CLI_FAIL, nx = 0, ny = 0;
    int ncol = names && xi && yi ? csv_header(cmd, path, ',', names, CSV_MAX_COLS) : -1;
    if (ncol < 0) goto done;
    bool no_header = csv && csv->no_header;
    if (need_y || (csv && csv->y_cols)) {
        ny = resolve_cols(cmd, path, "y-cols", csv->y_cols, names, ncol, no_header, yi,
                          CSV_MAX_COLS);
        if (ny < 0) goto done;
    }
    if (csv && csv->x_cols) {
        nx = resolve_cols(cmd, path, "x-cols", csv->x_cols, names, ncol, no_header, xi,
                          CSV_MAX_COLS);
        if (nx < 0) goto done;
    } else {
        for (int c = 0; c < ncol; c++) {
            bool is_y = false;
            for (int k = 0; k < ny; k++) is_y = is_y || yi[k] == c;
            if (!is_y) xi[nx++] = c;
        }
    }
    if (nx == 0) {
        rc = cli_usage(cmd, "CSV data %s: no input columns left (give --x-cols)", path);
        goto done;
    }
    d->x = lm_csv_load(ctx, path,
                       (lm_csv_opts){.no_header = no_header, .indices = xi, .n_indices = nx});
    if (d->x && ny)
        d->y = lm_csv_load(ctx, path,
                           (lm_csv_opts){.no_header = no_header, .indices = yi, .n_indices = ny});
    if (!d->x || (ny && !d->y)) {
        cli_data_free(d);
        rc = cli_fail(cmd, "%s", lm_ctx_error(ctx));
        goto done;
    }
    rc = CLI_OK;
done:
    for (int i = 0; names && i < CSV_MAX_COLS; i++) free(names[i]);
    free(names);
    free(xi);
    free(yi);
    return rc;
}

int cli_load_data(const char *cmd, lm_ctx *ctx, const char *spec, cli_split split,
                  const cli_csv *csv, bool need_y, cli_data *d) {
    d->x = d->y = NULL;
    int rc;
    if (!strcmp(spec, "mnist") || !strcmp(spec, "mnist:train") || !strcmp(spec, "mnist:test")) {
        if (spec[5] == ':') split = !strcmp(spec, "mnist:train") ? CLI_SPLIT_TRAIN : CLI_SPLIT_TEST;
        rc = load_mnist(cmd, ctx, split, d);
    } else if (cli_ends_with(spec, ".csv")) {
        rc = load_csv(cmd, ctx, spec, csv, need_y, d);
    } else if (cli_ends_with(spec, ".npz") || cli_ends_with(spec, ".npz:train") ||
               cli_ends_with(spec, ".npz:test")) {
        rc = load_npz(cmd, ctx, spec, split, need_y, d);
    } else if (strchr(spec, ',')) {
        const char *comma = strchr(spec, ',');
        char xp[4096];
        snprintf(xp, sizeof xp, "%.*s", (int)(comma - spec), spec);
        if (strchr(comma + 1, ','))
            return cli_usage(cmd, "--data '%s': give two files, X.npy,Y.npy", spec);
        rc = load_npy(cmd, ctx, xp, &d->x);
        if (rc == CLI_OK) rc = load_npy(cmd, ctx, comma + 1, &d->y);
    } else if (cli_ends_with(spec, ".npy")) {
        if (need_y) return cli_usage(cmd, "--data %s has no labels: give X.npy,Y.npy", spec);
        rc = load_npy(cmd, ctx, spec, &d->x);
    } else {
        return cli_usage(cmd,
                         "--data '%s' is not a known source (mnist, X.npy,Y.npy, FILE.npz, "
                         "FILE.csv)",
                         spec);
    }
    if (rc != CLI_OK) cli_data_free(d);
    if (rc == CLI_OK && !need_y && d->y) {
        lm_tensor_free(d->y);
        d->y = NULL;
    }
    return rc;
}

/* ---- fitting arrays to the model ---- */

static int64_t per_sample(lm_shape s) {
    int64_t n = 1;
    for (int i = 1; i < s.ndim; i++) n = s.dims[i] < 0 ? -1 : n * s.dims[i];
    return n;
}

static bool same_sample_shape(lm_shape a, lm_shape b) {
    if (a.ndim != b.ndim) return false;
    for (int i = 1; i < a.ndim; i++)
        if (a.dims[i] != b.dims[i] && b.dims[i] >= 0) return false;
    return true;
}

/* Replaces *t by a view of shape s (same storage). */
static int reshape_to(const char *cmd, lm_tensor **t, lm_shape s) {
    lm_tensor *r = lm_tensor_reshape(*t, s);
    if (!r) return cli_fail(cmd, "%s", lm_ctx_error(lm_tensor_ctx(*t)));
    lm_tensor_free(*t);
    *t = r;
    return CLI_OK;
}

/* One-hot rows (N, C) to class indices (N,) as int32. */
static lm_tensor *argmax_rows(lm_tensor *y) {
    int64_t n = lm_tensor_dim(y, 0), c = lm_tensor_dim(y, -1);
    lm_tensor *r = lm_tensor_new(lm_tensor_ctx(y), LM_I32, LM_SHAPE(n));
    for (int64_t i = 0; r && i < n; i++) {
        int64_t best = 0;
        for (int64_t k = 1; k < c; k++)
            if (lm_tensor_get(y, i * c + k) > lm_tensor_get(y, i * c + best)) best = k;
        lm_tensor_set(r, i, (double)best);
    }
    return r;
}

int cli_fit_data(const char *cmd, lm_model *m, cli_data *d) {
    char b1[128], b2[128];
    lm_shape in, xs = lm_tensor_shape(d->x);
    if (cli_model_input_shape(m, 0, &in) && !same_sample_shape(xs, in)) {
        int64_t want = per_sample(in), have = per_sample(xs);
        lm_shape s = in;
        s.dims[0] = xs.ndim ? xs.dims[0] : 0;
        if (xs.ndim == 0 || want < 0 || want != have) {
            lm_shape xs1 = xs, in1 = in;
            xs1.dims[0] = -1;
            in1.dims[0] = -1;
            return cli_fail(cmd, "the data's inputs have shape %s but the model takes %s",
                            lm_shape_str(xs1, b1, sizeof b1), lm_shape_str(in1, b2, sizeof b2));
        }
        if (reshape_to(cmd, &d->x, s) != CLI_OK) return CLI_FAIL;
    }
    lm_shape out;
    if (!d->y || !cli_model_output_shape(m, 0, &out) || out.ndim < 2) return CLI_OK;
    lm_shape ys = lm_tensor_shape(d->y);
    int64_t classes = out.dims[out.ndim - 1];
    lm_loss loss = cli_model_loss(m);
    if (loss == LM_CATEGORICAL_CROSSENTROPY && classes > 1 &&
        (ys.ndim == out.ndim - 1 || (ys.ndim == out.ndim && ys.dims[ys.ndim - 1] == 1))) {
        lm_tensor *oh = lm_to_categorical(d->y, (int)classes);
        if (!oh) return cli_fail(cmd, "labels: %s", lm_ctx_error(lm_tensor_ctx(d->y)));
        lm_tensor_free(d->y);
        d->y = oh;
    } else if (loss == LM_SPARSE_CATEGORICAL_CROSSENTROPY && ys.ndim == out.ndim && ys.ndim == 2 &&
               ys.dims[1] == classes && classes > 1) {
        lm_tensor *ix = argmax_rows(d->y);
        if (!ix) return cli_fail(cmd, "labels: out of memory");
        lm_tensor_free(d->y);
        d->y = ix;
    } else if (loss != LM_SPARSE_CATEGORICAL_CROSSENTROPY && ys.ndim == out.ndim - 1 &&
               classes == 1) {
        lm_shape s = ys;
        s.dims[s.ndim++] = 1;
        return reshape_to(cmd, &d->y, s);
    }
    return CLI_OK;
}
