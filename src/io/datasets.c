/* keras.datasets.mnist.load_data with a checksummed download cache, and the
 * data helpers to_categorical, lm_rows and lm_take_rows. */
#include "lamina/datasets.h"
#include "core/core.h"
#include "io/download.h"
#include "io/md5.h"
#include "lamina/idx.h"
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define MNIST_DEFAULT_URL "https://storage.googleapis.com/cvdf-datasets/mnist/"

/* The four files in output order, with the MD5 sums published with MNIST. */
static const struct mnist_file {
    const char *name, *md5;
} mnist_files[4] = {
    {"train-images-idx3-ubyte.gz", "f68b3c2dcbeaaa9fbdd348bbdeb94873"},
    {"train-labels-idx1-ubyte.gz", "d53e105ee54ea40749a09fcbcd1e9432"},
    {"t10k-images-idx3-ubyte.gz", "9fb629c4189551a2d022fa330f9573f3"},
    {"t10k-labels-idx1-ubyte.gz", "ec29112dd5afa0611ce80d1b7f02629c"},
};

/* malloc'd "a" + "/" + "b" (no doubled slash); NULL when out of memory. */
static char *join(const char *a, const char *b) {
    size_t na = strlen(a), nb = strlen(b);
    bool slash = na > 0 && a[na - 1] == '/';
    char *s = malloc(na + nb + 2);
    if (s) snprintf(s, na + nb + 2, "%s%s%s", a, slash ? "" : "/", b);
    return s;
}

static bool is_file(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* mkdir -p */
static lm_status make_dirs(lm_ctx *ctx, const char *dir) {
    char *p = malloc(strlen(dir) + 1);
    if (!p) return lm_fail(ctx, LM_ERR_OOM, "mnist: out of memory");
    strcpy(p, dir);
    lm_status st = LM_OK;
    for (char *c = p + 1;; c++) {
        if (*c != '/' && *c) continue;
        char keep = *c;
        *c = 0;
        if (mkdir(p, 0755) != 0 && errno != EEXIST) {
            st = lm_fail(ctx, LM_ERR_IO, "mnist: cannot create the cache folder %s: %s", p,
                         strerror(errno));
            break;
        }
        *c = keep;
        if (!keep) break;
    }
    if (st == LM_OK) {
        struct stat s;
        if (stat(dir, &s) != 0 || !S_ISDIR(s.st_mode))
            st = lm_fail(ctx, LM_ERR_IO, "mnist: the cache path %s is not a folder", dir);
    }
    free(p);
    return st;
}

/* The default cache folder into *out (malloc'd): $XDG_CACHE_HOME or ~/.cache,
 * then lamina/datasets/mnist. */
static lm_status default_cache(lm_ctx *ctx, char **out) {
    const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
    if (xdg && xdg[0] == '/')
        *out = join(xdg, "lamina/datasets/mnist");
    else if (home && *home) {
        char *c = join(home, ".cache");
        *out = c ? join(c, "lamina/datasets/mnist") : NULL;
        free(c);
    } else {
        return lm_fail(ctx, LM_ERR_IO,
                       "mnist: neither HOME nor XDG_CACHE_HOME is set, so there "
                       "is no cache folder; set LAMINA_DATA to a folder holding "
                       "mnist/");
    }
    return *out ? LM_OK : lm_fail(ctx, LM_ERR_OOM, "mnist: out of memory");
}

/* Makes sure path holds the file with the given MD5, downloading it from
 * base_url when it is missing or does not match. */
static lm_status ensure_file(lm_ctx *ctx, const char *path, const char *base_url,
                             const struct mnist_file *f) {
    if (is_file(path)) {
        char got[33];
        lm_status st = lm_md5_file(ctx, path, got);
        if (st != LM_OK) return st;
        if (!strcmp(got, f->md5)) return LM_OK;
        printf("A local file was found, but it seems to be incomplete or outdated because the md5 "
               "file hash does not match the original value of %s so we will re-download the "
               "data.\n",
               f->md5);
    }
    char *url = join(base_url, f->name);
    if (!url) return lm_fail(ctx, LM_ERR_OOM, "mnist: out of memory");
    lm_status st = lm_download(ctx, url, path, f->md5);
    free(url);
    return st;
}

/* Loads the four files from their paths and checks that they fit together. */
static lm_status load_four(lm_ctx *ctx, char *const paths[4], lm_tensor *out[4]) {
    for (int i = 0; i < 4; i++) {
        out[i] = lm_idx_load(ctx, paths[i]);
        if (!out[i]) return LM_ERR_FORMAT;
    }
    char b1[64], b2[64];
    for (int k = 0; k < 2; k++) {
        lm_tensor *x = out[2 * k], *y = out[2 * k + 1];
        lm_shape sx = lm_tensor_shape(x), sy = lm_tensor_shape(y);
        if (lm_tensor_dtype(x) != LM_U8 || lm_tensor_dtype(y) != LM_U8 || sx.ndim != 3 ||
            sx.dims[1] != 28 || sx.dims[2] != 28 || sy.ndim != 1 || sy.dims[0] != sx.dims[0])
            return lm_fail(ctx, LM_ERR_FORMAT,
                           "mnist: %s and %s hold %s %s images and %s %s labels; expected "
                           "uint8 (N, 28, 28) and uint8 (N,)",
                           paths[2 * k], paths[2 * k + 1], lm_dtype_name(lm_tensor_dtype(x)),
                           lm_shape_str(sx, b1, sizeof b1), lm_dtype_name(lm_tensor_dtype(y)),
                           lm_shape_str(sy, b2, sizeof b2));
    }
    return LM_OK;
}

/* Shared body: data_dir (may be NULL) is tried first for each file, then the cache. */
static lm_status load_mnist(lm_ctx *ctx, const char *data_dir, const char *base_url,
                            const char *cache_dir, lm_tensor **outs[4]) {
    for (int i = 0; i < 4; i++)
        if (outs[i]) *outs[i] = NULL;
    if (!ctx) return LM_ERR_ARG;
    for (int i = 0; i < 4; i++)
        if (!outs[i])
            return lm_fail(ctx, LM_ERR_ARG,
                           "mnist: x_train, y_train, x_test and y_test must not be NULL");
    if (!base_url || !*base_url) base_url = getenv("LAMINA_DATASETS_URL");
    if (!base_url || !*base_url) base_url = MNIST_DEFAULT_URL;

    char *paths[4] = {0}, *cache = NULL, *mnist_dir = NULL;
    lm_tensor *t[4] = {0};
    lm_status st = LM_OK;
    if (data_dir && *data_dir && !(mnist_dir = join(data_dir, "mnist")))
        st = lm_fail(ctx, LM_ERR_OOM, "mnist: out of memory");
    for (int i = 0; i < 4 && st == LM_OK; i++) {
        if (mnist_dir) {
            paths[i] = join(mnist_dir, mnist_files[i].name);
            if (paths[i] && is_file(paths[i])) continue; /* the user's copy, used as is */
            free(paths[i]);
            paths[i] = NULL;
        }
        if (!cache) { /* created only when a file is not in data_dir */
            if (cache_dir && *cache_dir) {
                if (!(cache = join(cache_dir, "")))
                    st = lm_fail(ctx, LM_ERR_OOM, "mnist: out of memory");
            } else {
                st = default_cache(ctx, &cache);
            }
            if (st == LM_OK) st = make_dirs(ctx, cache);
            if (st != LM_OK) break;
        }
        if (!(paths[i] = join(cache, mnist_files[i].name))) {
            st = lm_fail(ctx, LM_ERR_OOM, "mnist: out of memory");
            break;
        }
        st = ensure_file(ctx, paths[i], base_url, &mnist_files[i]);
    }
    if (st == LM_OK) st = load_four(ctx, paths, t);
    for (int i = 0; i < 4; i++) {
        if (st == LM_OK)
            *outs[i] = t[i];
        else
            lm_tensor_free(t[i]);
        free(paths[i]);
    }
    free(cache);
    free(mnist_dir);
    return st;
}

lm_status lm_mnist_load_data(lm_ctx *ctx, lm_tensor **x_train, lm_tensor **y_train,
                             lm_tensor **x_test, lm_tensor **y_test) {
    lm_tensor **outs[4] = {x_train, y_train, x_test, y_test};
    return load_mnist(ctx, getenv("LAMINA_DATA"), NULL, NULL, outs);
}

lm_status lm_mnist_load_data_from(lm_ctx *ctx, const char *base_url, const char *cache_dir,
                                  lm_tensor **x_train, lm_tensor **y_train, lm_tensor **x_test,
                                  lm_tensor **y_test) {
    lm_tensor **outs[4] = {x_train, y_train, x_test, y_test};
    return load_mnist(ctx, NULL, base_url, cache_dir, outs);
}

/* ---- data helpers ---- */

lm_tensor *lm_to_categorical(const lm_tensor *labels, int num_classes) {
    if (!labels) return NULL;
    lm_ctx *ctx = lm_tensor_ctx(labels);
    char buf[128];
    lm_shape in = lm_tensor_shape(labels);
    if (num_classes < 0) {
        lm_fail(ctx, LM_ERR_ARG,
                "to_categorical: num_classes is %d; it must be positive (or 0 "
                "for max(labels) + 1)",
                num_classes);
        return NULL;
    }
    int64_t n = lm_tensor_numel(labels);
    /* A trailing axis of 1 is dropped, as Keras: (N, 1) labels give (N, C). */
    lm_shape out = in;
    if (out.ndim > 1 && out.dims[out.ndim - 1] == 1) out.ndim--;
    if (out.ndim == LM_MAX_DIMS) {
        lm_fail(ctx, LM_ERR_SHAPE,
                "to_categorical: labels of shape %s already have %d dimensions, the most a "
                "tensor can have; the class axis does not fit",
                lm_shape_str(in, buf, sizeof buf), LM_MAX_DIMS);
        return NULL;
    }
    bool is_float = lm_tensor_dtype(labels) == LM_F32 || lm_tensor_dtype(labels) == LM_F64;
    int64_t *cls = malloc((size_t)(n ? n : 1) * sizeof *cls);
    if (!cls) {
        lm_fail(ctx, LM_ERR_OOM, "to_categorical: out of memory");
        return NULL;
    }
    int64_t maxv = -1;
    for (int64_t i = 0; i < n; i++) {
        double v = lm_tensor_get(labels, i);
        if (is_float && (!isfinite(v) || v != floor(v))) {
            lm_fail(ctx, LM_ERR_ARG,
                    "to_categorical: label %g at index %lld of labels %s is not a whole number", v,
                    (long long)i, lm_shape_str(in, buf, sizeof buf));
            free(cls);
            return NULL;
        }
        if (v < 0 || v >= (num_classes ? num_classes : 2147483647.0)) {
            if (num_classes)
                lm_fail(ctx, LM_ERR_ARG,
                        "to_categorical: label %.0f at index %lld of labels %s is outside [0, %d) "
                        "for num_classes=%d",
                        v, (long long)i, lm_shape_str(in, buf, sizeof buf), num_classes,
                        num_classes);
            else
                lm_fail(ctx, LM_ERR_ARG,
                        "to_categorical: label %.0f at index %lld of labels %s is negative or too "
                        "large for a class index",
                        v, (long long)i, lm_shape_str(in, buf, sizeof buf));
            free(cls);
            return NULL;
        }
        cls[i] = (int64_t)v;
        if (cls[i] > maxv) maxv = cls[i];
    }
    int64_t c = num_classes ? num_classes : maxv + 1;
    if (c == 0) {
        lm_fail(ctx, LM_ERR_ARG,
                "to_categorical: labels %s are empty, so num_classes cannot be inferred; pass it",
                lm_shape_str(in, buf, sizeof buf));
        free(cls);
        return NULL;
    }
    out.dims[out.ndim++] = c;
    lm_tensor *t = lm_tensor_new(ctx, LM_F32, out);
    if (t) {
        float *p = lm_tensor_f32(t);
        for (int64_t i = 0; i < n; i++) p[i * c + cls[i]] = 1.0f;
    }
    free(cls);
    return t;
}

lm_tensor *lm_rows(lm_tensor *t, int64_t start, int64_t n) {
    if (!t) return NULL;
    lm_ctx *ctx = lm_tensor_ctx(t);
    char buf[128];
    if (lm_tensor_ndim(t) < 1) {
        lm_fail(ctx, LM_ERR_SHAPE, "rows: a scalar has no rows to take");
        return NULL;
    }
    int64_t rows = lm_tensor_dim(t, 0);
    if (start < 0 || start > rows || n < 0) {
        lm_fail(ctx, LM_ERR_ARG,
                "rows: start %lld and count %lld do not fit a tensor of shape %s (start must be "
                "in [0, %lld], count >= 0)",
                (long long)start, (long long)n, lm_shape_str(lm_tensor_shape(t), buf, sizeof buf),
                (long long)rows);
        return NULL;
    }
    int64_t stop = n > rows - start ? rows : start + n;
    return lm_tensor_slice(t, 0, start, stop, 1);
}

lm_tensor *lm_take_rows(const lm_tensor *t, const int64_t *rows, int64_t n) {
    if (!t) return NULL;
    lm_ctx *ctx = lm_tensor_ctx(t);
    char buf[128];
    lm_shape s = lm_tensor_shape(t);
    if (s.ndim < 1 || n < 0 || (n > 0 && !rows)) {
        lm_fail(ctx, LM_ERR_ARG, "take_rows: cannot take %lld rows of a tensor of shape %s%s",
                (long long)n, lm_shape_str(s, buf, sizeof buf),
                n > 0 && !rows ? " from a NULL index list" : "");
        return NULL;
    }
    for (int64_t i = 0; i < n; i++) {
        if (rows[i] < 0 || rows[i] >= s.dims[0]) {
            lm_fail(ctx, LM_ERR_ARG,
                    "take_rows: row index %lld (entry %lld) is outside [0, %lld) for a tensor of "
                    "shape %s",
                    (long long)rows[i], (long long)i, (long long)s.dims[0],
                    lm_shape_str(s, buf, sizeof buf));
            return NULL;
        }
    }
    /* Rows are copied whole from a contiguous copy (or the tensor itself). */
    lm_tensor *src = lm_tensor_contiguous((lm_tensor *)t);
    if (!src) return NULL;
    lm_shape os = s;
    os.dims[0] = n;
    lm_tensor *out = lm_tensor_new(ctx, lm_tensor_dtype(t), os);
    if (out && n > 0) {
        int64_t row_elems = 1;
        for (int i = 1; i < s.ndim; i++) row_elems *= s.dims[i];
        size_t row_bytes = (size_t)row_elems * lm_dtype_size(lm_tensor_dtype(t));
        const unsigned char *ps = lm_tensor_cdata(src);
        unsigned char *pd = lm_tensor_data(out);
        for (int64_t i = 0; i < n; i++)
            memcpy(pd + (size_t)i * row_bytes, ps + (size_t)rows[i] * row_bytes, row_bytes);
    }
    lm_tensor_free(src);
    return out;
}
