/* IDX reader (gzip or plain, through zlib) and the MNIST loader built on it. */
#include "lamina/idx.h"
#include "core/core.h"
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

/* Payload buffers start at most this large and double as data arrives, so a
 * header claiming a huge count costs no more than the bytes actually present. */
#define IDX_FIRST_CHUNK ((size_t)1 << 20)
/* Largest single gzread request (gzread takes an unsigned int). */
#define IDX_MAX_READ ((size_t)1 << 30)

typedef struct idx_type {
    unsigned code;
    size_t size; /* bytes per element in the file */
    lm_dtype dt; /* dtype of the tensor returned */
    const char *name;
} idx_type;

static const idx_type idx_types[] = {
    {0x08, 1, LM_U8, "unsigned byte"}, {0x09, 1, LM_I32, "signed byte"},
    {0x0B, 2, LM_I32, "int16"},        {0x0C, 4, LM_I32, "int32"},
    {0x0D, 4, LM_F32, "float32"},      {0x0E, 8, LM_F64, "float64"},
};

static uint32_t be32(const unsigned char *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

static uint64_t be64(const unsigned char *p) {
    return (uint64_t)be32(p) << 32 | be32(p + 4);
}

/* Reads exactly n bytes (n <= IDX_MAX_READ). Returns the count read (less at
 * end of file) or -1 on a read/decompression error. */
static long read_some(gzFile gz, void *buf, size_t n) {
    size_t got = 0;
    while (got < n) {
        int r = gzread(gz, (unsigned char *)buf + got, (unsigned)(n - got));
        if (r < 0) return -1;
        if (r == 0) break;
        got += (size_t)r;
    }
    return (long)got;
}

/* Why the stream stopped short: a zlib error message, or NULL at a clean end. */
static const char *gz_problem(gzFile gz, const char *path) {
    int err = Z_OK;
    const char *msg = gzerror(gz, &err);
    if (err == Z_OK) return NULL;
    if (err == Z_ERRNO) return strerror(errno);
    if (!msg || !*msg) return "read error";
    /* zlib prefixes the path, which our messages already carry. */
    size_t n = strlen(path);
    if (!strncmp(msg, path, n) && !strncmp(msg + n, ": ", 2)) msg += n + 2;
    return msg;
}

/* Status for a failed read: LM_ERR_IO when the system call failed, else LM_ERR_FORMAT. */
static lm_status gz_status(gzFile gz) {
    int err = Z_OK;
    gzerror(gz, &err);
    return err == Z_ERRNO ? LM_ERR_IO : LM_ERR_FORMAT;
}

/* Reads the whole payload of `need` bytes into *out, a buffer (malloc'd, at
 * least 1 byte) that grows only as data arrives. */
static lm_status read_payload(lm_ctx *ctx, gzFile gz, const char *path, size_t need,
                              unsigned char **out) {
    size_t cap = need < IDX_FIRST_CHUNK ? need : IDX_FIRST_CHUNK;
    unsigned char *buf = malloc(cap ? cap : 1);
    if (!buf) return lm_fail(ctx, LM_ERR_OOM, "idx: %s: out of memory", path);
    size_t got = 0;
    while (got < need) {
        if (got == cap) {
            size_t ncap = cap > need / 2 ? need : cap * 2;
            unsigned char *nb = realloc(buf, ncap);
            if (!nb) {
                free(buf);
                return lm_fail(ctx, LM_ERR_OOM, "idx: %s: out of memory reading %zu bytes", path,
                               ncap);
            }
            buf = nb;
            cap = ncap;
        }
        size_t want = cap - got < IDX_MAX_READ ? cap - got : IDX_MAX_READ;
        long r = read_some(gz, buf + got, want);
        if (r >= 0) got += (size_t)r;
        if (r < 0 || (size_t)r < want) {
            const char *why = gz_problem(gz, path);
            free(buf);
            if (why)
                return lm_fail(ctx, gz_status(gz), "idx: %s: corrupt or truncated gzip stream (%s)",
                               path, why);
            return lm_fail(ctx, LM_ERR_FORMAT,
                           "idx: %s: truncated: header promises %zu bytes of data but the file "
                           "holds only %zu",
                           path, need, got);
        }
    }
    *out = buf;
    return LM_OK;
}

/* Converts n big-endian file elements of type ty into dst (of dtype ty->dt). */
static void convert(const idx_type *ty, const unsigned char *src, void *dst, size_t n) {
    if (n == 0) return; /* dst may be NULL for an empty tensor */
    switch (ty->code) {
    case 0x08:
        memcpy(dst, src, n);
        break;
    case 0x09: {
        int32_t *d = dst;
        for (size_t i = 0; i < n; i++) d[i] = src[i] >= 128 ? (int32_t)src[i] - 256 : src[i];
        break;
    }
    case 0x0B: {
        int32_t *d = dst;
        for (size_t i = 0; i < n; i++) {
            int32_t v = (int32_t)src[2 * i] << 8 | src[2 * i + 1];
            d[i] = v >= 0x8000 ? v - 0x10000 : v;
        }
        break;
    }
    case 0x0C:
    case 0x0D: {
        /* int32_t is two's complement and float IEEE-754 here, so the bits copy as they are. */
        unsigned char *d = dst;
        for (size_t i = 0; i < n; i++) {
            uint32_t u = be32(src + 4 * i);
            memcpy(d + 4 * i, &u, 4);
        }
        break;
    }
    case 0x0E: {
        unsigned char *d = dst;
        for (size_t i = 0; i < n; i++) {
            uint64_t u = be64(src + 8 * i);
            memcpy(d + 8 * i, &u, 8);
        }
        break;
    }
    }
}

/* Parses the header and payload of an open stream into *out. */
static lm_status idx_read(lm_ctx *ctx, gzFile gz, const char *path, lm_tensor **out) {
    unsigned char head[4 * (LM_MAX_DIMS + 1)];
    long r = read_some(gz, head, 4);
    if (r < 4) {
        const char *why = gz_problem(gz, path);
        if (r < 0 || why)
            return lm_fail(ctx, gz_status(gz),
                           "idx: %s: cannot read header: corrupt gzip stream or read error (%s)",
                           path, why ? why : "read error");
        return lm_fail(ctx, LM_ERR_FORMAT, "idx: %s: truncated header (%ld of 4 magic bytes)", path,
                       r);
    }
    if (head[0] != 0 || head[1] != 0)
        return lm_fail(
            ctx, LM_ERR_FORMAT,
            "idx: %s: bad magic 0x%02x%02x%02x%02x (an IDX file starts with two zero bytes)", path,
            head[0], head[1], head[2], head[3]);
    const idx_type *ty = NULL;
    for (size_t i = 0; i < sizeof idx_types / sizeof idx_types[0]; i++)
        if (idx_types[i].code == head[2]) ty = &idx_types[i];
    if (!ty)
        return lm_fail(ctx, LM_ERR_FORMAT, "idx: %s: unknown element type code 0x%02x", path,
                       head[2]);
    int ndim = head[3];
    if (ndim < 1 || ndim > LM_MAX_DIMS)
        return lm_fail(ctx, LM_ERR_FORMAT, "idx: %s: %d dimensions (1 to %d are supported)", path,
                       ndim, LM_MAX_DIMS);
    size_t dbytes = 4 * (size_t)ndim;
    r = read_some(gz, head + 4, dbytes);
    if (r < 0 || (size_t)r < dbytes) {
        const char *why = gz_problem(gz, path);
        return lm_fail(ctx, LM_ERR_FORMAT,
                       "idx: %s: truncated header (%ld of %zu dimension bytes)%s%s", path,
                       r < 0 ? 0 : r, dbytes, why ? ": " : "", why ? why : "");
    }
    lm_shape shape = {ndim, {0}};
    size_t numel = 1, nbytes = 0, obytes = 0;
    bool overflow = false;
    for (int i = 0; i < ndim; i++) {
        uint32_t d = be32(head + 4 + 4 * i);
        shape.dims[i] = d;
        if (!overflow && lm_mul_size(numel, d, &numel) != 0) overflow = true;
    }
    /* Bound the output too: it may be 4x the file's bytes (signed byte -> int32). */
    if (overflow || (uint64_t)numel > (uint64_t)INT64_MAX ||
        lm_mul_size(numel, ty->size, &nbytes) != 0 ||
        lm_mul_size(numel, lm_dtype_size(ty->dt), &obytes) != 0 || obytes > (size_t)PTRDIFF_MAX) {
        char buf[160];
        return lm_fail(ctx, LM_ERR_FORMAT,
                       "idx: %s: dimensions %s of %s are too large (size overflow)", path,
                       lm_shape_str(shape, buf, sizeof buf), ty->name);
    }
    unsigned char *raw = NULL;
    lm_status st = read_payload(ctx, gz, path, nbytes, &raw);
    if (st != LM_OK) return st;
    unsigned char extra;
    r = read_some(gz, &extra, 1);
    const char *why = r > 0 ? NULL : gz_problem(gz, path);
    if (r != 0 || why) {
        free(raw);
        if (r > 0)
            return lm_fail(ctx, LM_ERR_FORMAT,
                           "idx: %s: trailing garbage after the %zu bytes of data the header "
                           "declares",
                           path, nbytes);
        return lm_fail(ctx, gz_status(gz), "idx: %s: corrupt or truncated gzip stream (%s)", path,
                       why ? why : "read error");
    }
    lm_tensor *t = lm_tensor_new(ctx, ty->dt, shape);
    if (t) convert(ty, raw, lm_tensor_data(t), numel);
    free(raw);
    if (!t) return LM_ERR_OOM;
    *out = t;
    return LM_OK;
}

/* lm_idx_load with the status returned. */
static lm_status idx_load(lm_ctx *ctx, const char *path, lm_tensor **out) {
    *out = NULL;
    if (!path) return lm_fail(ctx, LM_ERR_ARG, "idx: path is NULL");
    errno = 0;
    gzFile gz = gzopen(path, "rb");
    if (!gz)
        return lm_fail(ctx, LM_ERR_IO, "idx: cannot open %s: %s", path,
                       errno ? strerror(errno) : "out of memory");
    gzbuffer(gz, 1u << 17);
    lm_status st = idx_read(ctx, gz, path, out);
    gzclose(gz);
    return st;
}

lm_tensor *lm_idx_load(lm_ctx *ctx, const char *path) {
    lm_tensor *t = NULL;
    if (ctx) idx_load(ctx, path, &t);
    return t;
}

/* Loads one file of a split into *out and checks its type and shape. */
static lm_status mnist_file(lm_ctx *ctx, const char *dir, const char *name, int ndim,
                            lm_tensor **out) {
    *out = NULL;
    size_t len = strlen(dir) + strlen(name) + sizeof "/mnist/";
    char *path = malloc(len);
    if (!path) return lm_fail(ctx, LM_ERR_OOM, "mnist: out of memory");
    snprintf(path, len, "%s/mnist/%s", dir, name);
    lm_tensor *t = NULL;
    lm_status st = idx_load(ctx, path, &t);
    if (st == LM_OK && (lm_tensor_dtype(t) != LM_U8 || lm_tensor_ndim(t) != ndim ||
                        (ndim == 3 && (lm_tensor_dim(t, 1) != 28 || lm_tensor_dim(t, 2) != 28)))) {
        char buf[160];
        st =
            lm_fail(ctx, LM_ERR_FORMAT, "mnist: %s: expected unsigned bytes of shape %s, got %s %s",
                    path, ndim == 3 ? "(N, 28, 28)" : "(N,)", lm_dtype_name(lm_tensor_dtype(t)),
                    lm_shape_str(lm_tensor_shape(t), buf, sizeof buf));
        lm_tensor_free(t);
        t = NULL;
    }
    free(path);
    *out = t;
    return st;
}

lm_status lm_mnist_load_split(lm_ctx *ctx, const char *dir, bool train, lm_tensor **images,
                              lm_tensor **labels) {
    if (images) *images = NULL;
    if (labels) *labels = NULL;
    if (!ctx) return LM_ERR_ARG;
    if (!dir || !images || !labels)
        return lm_fail(ctx, LM_ERR_ARG, "mnist: dir, images and labels must not be NULL");
    const char *prefix = train ? "train" : "t10k";
    char iname[64], lname[64];
    snprintf(iname, sizeof iname, "%s-images-idx3-ubyte.gz", prefix);
    snprintf(lname, sizeof lname, "%s-labels-idx1-ubyte.gz", prefix);

    lm_tensor *img = NULL, *lab = NULL, *x = NULL, *y = NULL;
    lm_status st = mnist_file(ctx, dir, iname, 3, &img);
    if (st == LM_OK) st = mnist_file(ctx, dir, lname, 1, &lab);
    if (st != LM_OK) goto done;
    int64_t n = lm_tensor_dim(img, 0);
    if (lm_tensor_dim(lab, 0) != n) {
        st = lm_fail(ctx, LM_ERR_FORMAT,
                     "mnist: %s/mnist: %s holds %lld images but %s holds %lld labels", dir, iname,
                     (long long)n, lname, (long long)lm_tensor_dim(lab, 0));
        goto done;
    }
    const uint8_t *lb = lm_tensor_cdata(lab);
    for (int64_t i = 0; i < n; i++) {
        if (lb[i] > 9) {
            st = lm_fail(ctx, LM_ERR_FORMAT,
                         "mnist: %s/mnist/%s: label %d at index %lld is not 0..9", dir, lname,
                         lb[i], (long long)i);
            goto done;
        }
    }
    x = lm_tensor_new(ctx, LM_F32, LM_SHAPE(n, 28, 28));
    y = lm_tensor_new(ctx, LM_I32, LM_SHAPE(n));
    if (!x || !y) {
        st = LM_ERR_OOM;
        goto done;
    }
    const uint8_t *px = lm_tensor_cdata(img);
    float *xd = lm_tensor_f32(x);
    int32_t *yd = lm_tensor_data(y);
    for (int64_t i = 0; i < n * 28 * 28; i++) xd[i] = px[i] / 255.0f;
    for (int64_t i = 0; i < n; i++) yd[i] = lb[i];
    *images = x;
    *labels = y;
    x = y = NULL;
done:
    lm_tensor_free(img);
    lm_tensor_free(lab);
    lm_tensor_free(x);
    lm_tensor_free(y);
    return st;
}
