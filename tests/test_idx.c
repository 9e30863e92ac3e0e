/* Tests of the IDX reader and the MNIST loader: the real data set (when
 * LAMINA_DATA is set), every element type, and every malformed-file path. */
#define _POSIX_C_SOURCE 200809L
#include "lamina/idx.h"
#include "lmtest.h"
#include <stdint.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

static lm_ctx *ctx;

/* ---- helpers: building IDX files in /tmp ---- */

typedef struct bytes {
    unsigned char *p;
    size_t n, cap;
} bytes;

static void put(bytes *b, const void *src, size_t n) {
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2;
        b->p = realloc(b->p, b->cap);
        if (!b->p) abort();
    }
    memcpy(b->p + b->n, src, n);
    b->n += n;
}

static void put_be(bytes *b, uint64_t v, int width) {
    for (int i = width - 1; i >= 0; i--) {
        unsigned char c = (unsigned char)(v >> (8 * i));
        put(b, &c, 1);
    }
}

/* An IDX header: magic with the type code, then the dimensions. */
static bytes header(int type, int ndim, const uint32_t *dims) {
    bytes b = {0};
    put_be(&b, (uint32_t)type << 8 | (uint32_t)ndim, 4);
    for (int i = 0; i < ndim; i++) put_be(&b, dims[i], 4);
    return b;
}

/* Writes n bytes to path, gzip-compressed when gz. */
static void write_to(const char *path, const void *data, size_t n, int gz) {
    if (gz) {
        gzFile f = gzopen(path, "wb");
        CHECK(f != NULL);
        if (!f) return;
        if (n) CHECK(gzwrite(f, data, (unsigned)n) == (int)n);
        CHECK(gzclose(f) == Z_OK);
    } else {
        FILE *f = fopen(path, "wb");
        CHECK(f != NULL);
        if (!f) return;
        if (n) CHECK(fwrite(data, 1, n, f) == n);
        CHECK(fclose(f) == 0);
    }
}

/* A fresh temporary file holding the bytes; the caller unlinks it. */
static void temp_file(char path[64], const void *data, size_t n, int gz) {
    strcpy(path, "/tmp/lamina_idx_XXXXXX");
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    if (fd >= 0) close(fd);
    write_to(path, data, n, gz);
}

/* Loads the bytes as an IDX file (plain or gzip) expecting failure; the message must name the file
 * and contain `sub`. */
static void expect_fail(const void *data, size_t n, int gz, const char *sub) {
    char path[64];
    temp_file(path, data, n, gz);
    lm_ctx_clear_error(ctx);
    lm_tensor *t = lm_idx_load(ctx, path);
    CHECK_MSG(t == NULL, "%s (gz=%d) loaded", sub, gz);
    lm_tensor_free(t);
    CHECK_CONTAINS(lm_ctx_error(ctx), path);
    CHECK_CONTAINS(lm_ctx_error(ctx), sub);
    unlink(path);
}

/* Loads the bytes (plain and gzip) and returns the tensor of the plain copy
 * after checking the gzip copy gives the same bytes. */
static lm_tensor *load_both(const void *data, size_t n) {
    char p1[64], p2[64];
    temp_file(p1, data, n, 0);
    temp_file(p2, data, n, 1);
    lm_tensor *a = lm_idx_load(ctx, p1);
    lm_tensor *b = lm_idx_load(ctx, p2);
    CHECK_MSG(a && b, "%s", lm_ctx_error(ctx));
    if (a && b) {
        CHECK(lm_tensor_dtype(a) == lm_tensor_dtype(b));
        CHECK(lm_tensor_numel(a) == lm_tensor_numel(b));
        size_t sz = (size_t)lm_tensor_numel(a) * lm_dtype_size(lm_tensor_dtype(a));
        CHECK(memcmp(lm_tensor_cdata(a), lm_tensor_cdata(b), sz) == 0);
    }
    lm_tensor_free(b);
    unlink(p1);
    unlink(p2);
    return a;
}

/* ---- the real data set ---- */

/* Sum of pixel bytes 16..16+784 of the first image, read with zlib directly
 * (independently of the reader under test). */
static long first_image_sum_zlib(const char *path) {
    gzFile f = gzopen(path, "rb");
    if (!f) return -1;
    unsigned char buf[16 + 784];
    int r = gzread(f, buf, sizeof buf);
    gzclose(f);
    if (r != (int)sizeof buf) return -1;
    long s = 0;
    for (int i = 16; i < 16 + 784; i++) s += buf[i];
    return s;
}

static void test_mnist_test_split(void) {
    const char *dir = lmt_data_dir();
    if (!dir) {
        printf("skip test_mnist_test_split: LAMINA_DATA is not set\n");
        return;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/mnist/t10k-images-idx3-ubyte.gz", dir);

    /* The raw reader: unsigned bytes of shape (10000, 28, 28). */
    lm_tensor *raw = lm_idx_load(ctx, path);
    CHECK_MSG(raw != NULL, "%s", lm_ctx_error(ctx));
    long want = first_image_sum_zlib(path);
    /* 18454 was also found once with Python:
     * sum(gzip.open('t10k-images-idx3-ubyte.gz').read()[16:16+784]) */
    CHECK(want == 18454);
    if (raw) {
        CHECK(lm_tensor_dtype(raw) == LM_U8);
        CHECK(lm_tensor_ndim(raw) == 3);
        CHECK(lm_tensor_dim(raw, 0) == 10000);
        CHECK(lm_tensor_dim(raw, 1) == 28 && lm_tensor_dim(raw, 2) == 28);
        const uint8_t *px = lm_tensor_cdata(raw);
        long s = 0;
        for (int i = 0; i < 784; i++) s += px[i];
        CHECK(s == want);
    }
    lm_tensor_free(raw);

    lm_tensor *x = NULL, *y = NULL;
    CHECK_STATUS(lm_mnist_load_split(ctx, dir, false, &x, &y), LM_OK);
    CHECK_MSG(x && y, "%s", lm_ctx_error(ctx));
    if (!x || !y) return;
    CHECK(lm_tensor_dtype(x) == LM_F32 && lm_tensor_dtype(y) == LM_I32);
    CHECK(lm_tensor_ndim(x) == 3 && lm_tensor_dim(x, 0) == 10000);
    CHECK(lm_tensor_dim(x, 1) == 28 && lm_tensor_dim(x, 2) == 28);
    CHECK(lm_tensor_ndim(y) == 1 && lm_tensor_dim(y, 0) == 10000);
    const int first[10] = {7, 2, 1, 0, 4, 1, 4, 9, 5, 9};
    const int32_t *lab = lm_tensor_cdata(y);
    for (int i = 0; i < 10; i++) CHECK_MSG(lab[i] == first[i], "label %d is %d", i, (int)lab[i]);
    const float *xd = lm_tensor_cdata(x);
    double s = 0, lo = 1, hi = 0;
    for (int i = 0; i < 784; i++) s += xd[i];
    for (int64_t i = 0; i < lm_tensor_numel(x); i++) {
        if (xd[i] < lo) lo = xd[i];
        if (xd[i] > hi) hi = xd[i];
    }
    CHECK_NEAR(s, (double)want / 255.0, 1e-5);
    CHECK(lo == 0.0 && hi == 1.0);
    lm_tensor_free(x);
    lm_tensor_free(y);
}

static void test_mnist_train_split(void) {
    const char *dir = lmt_data_dir();
    if (!dir) {
        printf("skip test_mnist_train_split: LAMINA_DATA is not set\n");
        return;
    }
    lm_tensor *x = NULL, *y = NULL;
    CHECK_STATUS(lm_mnist_load_split(ctx, dir, true, &x, &y), LM_OK);
    CHECK_MSG(x && y, "%s", lm_ctx_error(ctx));
    if (!x || !y) return;
    CHECK(lm_tensor_dim(x, 0) == 60000 && lm_tensor_dim(y, 0) == 60000);
    /* First train labels: 5, 0, 4, 1, 9 (the well-known start of MNIST). */
    const int first[5] = {5, 0, 4, 1, 9};
    const int32_t *lab = lm_tensor_cdata(y);
    for (int i = 0; i < 5; i++) CHECK(lab[i] == first[i]);
    const float *xd = lm_tensor_cdata(x);
    double s = 0;
    for (int i = 0; i < 784; i++) s += xd[i];
    /* Found with Python: sum(gzip.open('train-images-idx3-ubyte.gz').read()[16:16+784]) */
    CHECK_NEAR(s, 27525 / 255.0, 1e-5);
    lm_tensor_free(x);
    lm_tensor_free(y);
}

/* ---- element types ---- */

static void test_types_roundtrip(void) {
    /* unsigned byte, 2 x 3 */
    {
        uint32_t d[2] = {2, 3};
        bytes b = header(0x08, 2, d);
        const unsigned char v[6] = {0, 1, 127, 128, 200, 255};
        put(&b, v, 6);
        lm_tensor *t = load_both(b.p, b.n);
        if (t) {
            CHECK(lm_tensor_dtype(t) == LM_U8);
            CHECK(lm_tensor_ndim(t) == 2 && lm_tensor_dim(t, 0) == 2 && lm_tensor_dim(t, 1) == 3);
            CHECK(memcmp(lm_tensor_cdata(t), v, 6) == 0);
        }
        lm_tensor_free(t);
        free(b.p);
    }
    /* signed byte */
    {
        uint32_t d[1] = {4};
        bytes b = header(0x09, 1, d);
        const unsigned char v[4] = {0x00, 0x7f, 0x80, 0xff};
        put(&b, v, 4);
        lm_tensor *t = load_both(b.p, b.n);
        if (t) {
            CHECK(lm_tensor_dtype(t) == LM_I32);
            const int32_t *x = lm_tensor_cdata(t);
            CHECK(x[0] == 0 && x[1] == 127 && x[2] == -128 && x[3] == -1);
        }
        lm_tensor_free(t);
        free(b.p);
    }
    /* int16 */
    {
        const int16_t v[5] = {0, 1, -1, 32767, -32768};
        uint32_t d[1] = {5};
        bytes b = header(0x0B, 1, d);
        for (int i = 0; i < 5; i++) put_be(&b, (uint16_t)v[i], 2);
        lm_tensor *t = load_both(b.p, b.n);
        if (t) {
            CHECK(lm_tensor_dtype(t) == LM_I32 && lm_tensor_dim(t, 0) == 5);
            const int32_t *x = lm_tensor_cdata(t);
            for (int i = 0; i < 5; i++) CHECK_MSG(x[i] == v[i], "int16 %d: %d", i, (int)x[i]);
        }
        lm_tensor_free(t);
        free(b.p);
    }
    /* int32, 1 x 1 x 5 */
    {
        const int32_t v[5] = {0, 123456789, -2, INT32_MAX, INT32_MIN};
        uint32_t d[3] = {1, 1, 5};
        bytes b = header(0x0C, 3, d);
        for (int i = 0; i < 5; i++) put_be(&b, (uint32_t)v[i], 4);
        lm_tensor *t = load_both(b.p, b.n);
        if (t) {
            CHECK(lm_tensor_dtype(t) == LM_I32 && lm_tensor_ndim(t) == 3);
            const int32_t *x = lm_tensor_cdata(t);
            for (int i = 0; i < 5; i++) CHECK_MSG(x[i] == v[i], "int32 %d: %d", i, (int)x[i]);
        }
        lm_tensor_free(t);
        free(b.p);
    }
    /* float32 */
    {
        const float v[4] = {0.0f, -1.5f, 3.14159274f, 1e-30f};
        uint32_t d[2] = {2, 2};
        bytes b = header(0x0D, 2, d);
        for (int i = 0; i < 4; i++) {
            uint32_t u;
            memcpy(&u, &v[i], 4);
            put_be(&b, u, 4);
        }
        lm_tensor *t = load_both(b.p, b.n);
        if (t) {
            CHECK(lm_tensor_dtype(t) == LM_F32);
            const float *x = lm_tensor_cdata(t);
            for (int i = 0; i < 4; i++) CHECK_MSG(x[i] == v[i], "float32 %d: %g", i, x[i]);
        }
        lm_tensor_free(t);
        free(b.p);
    }
    /* float64 */
    {
        const double v[3] = {-0.25, 2.718281828459045, 1e300};
        uint32_t d[1] = {3};
        bytes b = header(0x0E, 1, d);
        for (int i = 0; i < 3; i++) {
            uint64_t u;
            memcpy(&u, &v[i], 8);
            put_be(&b, u, 8);
        }
        lm_tensor *t = load_both(b.p, b.n);
        if (t) {
            CHECK(lm_tensor_dtype(t) == LM_F64);
            const double *x = lm_tensor_cdata(t);
            for (int i = 0; i < 3; i++) CHECK_MSG(x[i] == v[i], "float64 %d: %g", i, x[i]);
        }
        lm_tensor_free(t);
        free(b.p);
    }
    /* 8 dimensions (the most allowed) and a zero-sized dimension */
    {
        uint32_t d[8] = {1, 2, 1, 2, 1, 2, 1, 2};
        bytes b = header(0x08, 8, d);
        unsigned char v[16];
        for (int i = 0; i < 16; i++) v[i] = (unsigned char)i;
        put(&b, v, 16);
        lm_tensor *t = load_both(b.p, b.n);
        if (t) CHECK(lm_tensor_ndim(t) == 8 && lm_tensor_numel(t) == 16);
        lm_tensor_free(t);
        free(b.p);
        uint32_t z[2] = {0, 28};
        b = header(0x0D, 2, z);
        t = load_both(b.p, b.n);
        if (t) CHECK(lm_tensor_numel(t) == 0 && lm_tensor_dim(t, 1) == 28);
        lm_tensor_free(t);
        free(b.p);
        uint32_t z1[1] = {0};
        b = header(0x08, 1, z1);
        t = load_both(b.p, b.n);
        if (t) CHECK(lm_tensor_numel(t) == 0 && lm_tensor_dtype(t) == LM_U8);
        lm_tensor_free(t);
        free(b.p);
    }
}

/* ---- error paths ---- */

static void test_null_args(void) {
    lm_ctx_clear_error(ctx);
    CHECK(lm_idx_load(ctx, NULL) == NULL);
    CHECK_CONTAINS(lm_ctx_error(ctx), "NULL");
    CHECK(lm_idx_load(NULL, "/tmp/whatever") == NULL);

    lm_tensor *x = (lm_tensor *)&x, *y = (lm_tensor *)&y; /* junk the call must reset */
    CHECK_STATUS(lm_mnist_load_split(ctx, NULL, false, &x, &y), LM_ERR_ARG);
    CHECK(x == NULL && y == NULL);
    CHECK_STATUS(lm_mnist_load_split(ctx, "/tmp", false, NULL, &y), LM_ERR_ARG);
    CHECK_STATUS(lm_mnist_load_split(ctx, "/tmp", false, &x, NULL), LM_ERR_ARG);
    CHECK(x == NULL);
    CHECK_STATUS(lm_mnist_load_split(NULL, "/tmp", false, &x, &y), LM_ERR_ARG);
}

static void test_missing_file(void) {
    const char *path = "/tmp/lamina_idx_does_not_exist/none.idx.gz";
    lm_ctx_clear_error(ctx);
    CHECK(lm_idx_load(ctx, path) == NULL);
    CHECK_CONTAINS(lm_ctx_error(ctx), path);
    CHECK_CONTAINS(lm_ctx_error(ctx), "No such file");
    CHECK(lm_idx_load(ctx, "/tmp") == NULL); /* a directory opens but cannot be read */
    CHECK_CONTAINS(lm_ctx_error(ctx), "/tmp");

    lm_tensor *x, *y;
    CHECK_STATUS(lm_mnist_load_split(ctx, "/tmp/lamina_idx_does_not_exist", true, &x, &y),
                 LM_ERR_IO);
    CHECK(x == NULL && y == NULL);
    CHECK_CONTAINS(lm_ctx_error(ctx), "train-images-idx3-ubyte.gz");
}

static void test_bad_header(void) {
    uint32_t d[1] = {1};
    bytes b = header(0x08, 1, d);
    put(&b, "x", 1);
    for (int gz = 0; gz < 2; gz++) {
        b.p[0] = 0x1f; /* bad magic */
        expect_fail(b.p, b.n, gz, "bad magic");
        b.p[0] = 0;
        b.p[1] = 8;
        expect_fail(b.p, b.n, gz, "bad magic");
        b.p[1] = 0;
        b.p[2] = 0x0A; /* no such type */
        expect_fail(b.p, b.n, gz, "unknown element type code 0x0a");
        b.p[2] = 0x08;
        expect_fail(b.p, 0, gz, "truncated header"); /* empty */
        expect_fail(b.p, 3, gz, "truncated header"); /* part of the magic */
        expect_fail(b.p, 6, gz, "truncated header"); /* part of a dim */
        expect_fail(b.p, b.n - 1, gz, "truncated");  /* no payload */
    }
    free(b.p);

    /* 0 and 9 dimensions */
    for (int gz = 0; gz < 2; gz++) {
        bytes z = header(0x08, 0, NULL);
        put(&z, "abcd", 4);
        expect_fail(z.p, z.n, gz, "0 dimensions");
        free(z.p);
        uint32_t n9[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
        bytes nine = header(0x08, 9, n9);
        put(&nine, "a", 1);
        expect_fail(nine.p, nine.n, gz, "9 dimensions");
        free(nine.p);
    }
}

static void test_truncated_payload(void) {
    uint32_t d[2] = {100, 50};
    bytes b = header(0x0C, 2, d); /* needs 20000 bytes */
    unsigned char junk[19999];
    for (size_t i = 0; i < sizeof junk; i++) junk[i] = (unsigned char)(i * 7);
    put(&b, junk, sizeof junk);
    expect_fail(b.p, b.n, 0, "truncated");
    expect_fail(b.p, b.n, 1, "truncated");
    expect_fail(b.p, b.n, 0, "19999");
    free(b.p);
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

#if defined(__SANITIZE_ADDRESS__)
#define LMT_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define LMT_ASAN 1
#endif
#endif

#if !defined(LMT_ASAN)
/* Address space in use (bytes), from /proc; 0 when unknown. */
static size_t vm_size(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long pages = 0;
    if (!f) return 0;
    if (fscanf(f, "%lu", &pages) != 1) pages = 0;
    fclose(f);
    return (size_t)pages * (size_t)sysconf(_SC_PAGESIZE);
}
#endif

static void test_giant_count(void) {
    /* 16 bytes claiming 2^31 x 2^31 unsigned bytes (2^62), then 2^15 x 2^15
     * (1 GiB): both must fail as truncated, quickly, without allocating what
     * the header claims (an up-front allocation would give "out of memory",
     * or abort under AddressSanitizer). */
    uint32_t huge[2] = {1u << 31, 1u << 31};
    uint32_t gib[2] = {1u << 15, 1u << 15};
    bytes a = header(0x08, 2, huge);
    put(&a, "abcd", 4);
    bytes b = header(0x0E, 2, gib); /* float64: 8 GiB, output 8 GiB */
    put(&b, "abcd", 4);

#if !defined(LMT_ASAN)
    /* Without sanitizers, cap the address space at what is in use + 256 MiB so
     * that an allocation sized by the header would fail. */
    struct rlimit old;
    size_t vm = vm_size();
    int limited = 0;
    if (vm && getrlimit(RLIMIT_AS, &old) == 0) {
        struct rlimit lim = old;
        rlim_t cap = (rlim_t)vm + ((rlim_t)256 << 20);
        if (old.rlim_cur == RLIM_INFINITY || old.rlim_cur > cap) {
            lim.rlim_cur = cap;
            limited = setrlimit(RLIMIT_AS, &lim) == 0;
        }
    }
#endif
    double t0 = now_s();
    for (int gz = 0; gz < 2; gz++) {
        expect_fail(a.p, a.n, gz, "truncated");
        expect_fail(a.p, a.n, gz, "holds only 4");
        expect_fail(b.p, b.n, gz, "truncated");
    }
    double dt = now_s() - t0;
#if !defined(LMT_ASAN)
    if (limited) CHECK(setrlimit(RLIMIT_AS, &old) == 0);
#endif
    CHECK_MSG(dt < 2.0, "giant headers took %.2f s", dt);
    free(a.p);
    free(b.p);

    /* Products that overflow 64 bits are refused before reading. */
    uint32_t over[8];
    for (int i = 0; i < 8; i++) over[i] = 0xFFFFFFFFu;
    bytes c = header(0x08, 8, over);
    expect_fail(c.p, c.n, 0, "too large");
    free(c.p);
}

static void test_trailing_bytes(void) {
    uint32_t d[1] = {3};
    bytes b = header(0x08, 1, d);
    put(&b, "abcX", 4); /* one byte too many */
    expect_fail(b.p, b.n, 0, "trailing garbage");
    expect_fail(b.p, b.n, 1, "trailing garbage");
    free(b.p);
}

static void test_corrupt_gzip(void) {
    /* A valid gzip header (magic, deflate, no flags, mtime, xfl, OS) then garbage. */
    unsigned char g[64] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3};
    for (int i = 10; i < 64; i++) g[i] = 0xff;
    expect_fail(g, sizeof g, 0, "corrupt gzip stream");

    /* A good gzip file cut in half: the stream ends early. */
    uint32_t d[1] = {5000};
    bytes b = header(0x0C, 1, d);
    for (uint32_t i = 0; i < 5000; i++) put_be(&b, i * 2654435761u, 4); /* barely compressible */
    char path[64];
    temp_file(path, b.p, b.n, 1);
    FILE *f = fopen(path, "rb");
    CHECK(f != NULL);
    unsigned char *z = malloc(b.n * 2);
    size_t zn = f ? fread(z, 1, b.n * 2, f) : 0;
    if (f) fclose(f);
    CHECK(zn > 100);
    unlink(path);
    expect_fail(z, zn / 2, 0, "gzip");
    /* Only the 8-byte CRC/length trailer missing: all data present, stream incomplete. */
    expect_fail(z, zn - 8, 0, "gzip");
    /* A flipped byte in the CRC: the data check fails. */
    z[zn - 6] ^= 0x55;
    expect_fail(z, zn, 0, "gzip");
    free(z);
    free(b.p);
}

/* ---- lm_mnist_load_split on small synthetic directories ---- */

static void mnist_dir_write(const char *root, const char *name, const bytes *b) {
    char path[256];
    snprintf(path, sizeof path, "%s/mnist/%s", root, name);
    write_to(path, b->p, b->n, 1);
}

static void mnist_dir_clean(const char *root) {
    const char *names[] = {"t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz",
                           "train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"};
    char path[256];
    for (int i = 0; i < 4; i++) {
        snprintf(path, sizeof path, "%s/mnist/%s", root, names[i]);
        unlink(path);
    }
    snprintf(path, sizeof path, "%s/mnist", root);
    rmdir(path);
    rmdir(root);
}

static bytes mnist_images(uint32_t n, uint32_t rows, uint32_t cols) {
    uint32_t d[3] = {n, rows, cols};
    bytes b = header(0x08, 3, d);
    for (uint32_t i = 0; i < n * rows * cols; i++) {
        unsigned char v = (unsigned char)(i % 256);
        put(&b, &v, 1);
    }
    return b;
}

static bytes mnist_labels(uint32_t n, unsigned char first) {
    uint32_t d[1] = {n};
    bytes b = header(0x08, 1, d);
    for (uint32_t i = 0; i < n; i++) {
        unsigned char v = i == 0 ? first : (unsigned char)(i % 10);
        put(&b, &v, 1);
    }
    return b;
}

static void test_mnist_synthetic(void) {
    char root[] = "/tmp/lamina_mnist_XXXXXX";
    CHECK(mkdtemp(root) != NULL);
    char sub[64];
    snprintf(sub, sizeof sub, "%s/mnist", root);
    CHECK(mkdir(sub, 0700) == 0);
    lm_tensor *x, *y;

    /* A good 3-item split. */
    bytes im = mnist_images(3, 28, 28), lb = mnist_labels(3, 9);
    mnist_dir_write(root, "t10k-images-idx3-ubyte.gz", &im);
    mnist_dir_write(root, "t10k-labels-idx1-ubyte.gz", &lb);
    CHECK_STATUS(lm_mnist_load_split(ctx, root, false, &x, &y), LM_OK);
    CHECK_MSG(x && y, "%s", lm_ctx_error(ctx));
    if (x && y) {
        CHECK(lm_tensor_dim(x, 0) == 3 && lm_tensor_dim(y, 0) == 3);
        const float *xd = lm_tensor_cdata(x);
        CHECK(xd[0] == 0.0f && xd[255] == 1.0f && xd[256] == 0.0f);
        CHECK_NEAR(xd[51], 0.2, 1e-7);
        const int32_t *yd = lm_tensor_cdata(y);
        CHECK(yd[0] == 9 && yd[1] == 1 && yd[2] == 2);
    }
    lm_tensor_free(x);
    lm_tensor_free(y);
    free(lb.p);

    /* 3 images, 2 labels. */
    lb = mnist_labels(2, 0);
    mnist_dir_write(root, "t10k-labels-idx1-ubyte.gz", &lb);
    CHECK_STATUS(lm_mnist_load_split(ctx, root, false, &x, &y), LM_ERR_FORMAT);
    CHECK(x == NULL && y == NULL);
    CHECK_CONTAINS(lm_ctx_error(ctx), "3 images but");
    CHECK_CONTAINS(lm_ctx_error(ctx), "2 labels");
    free(lb.p);

    /* A label outside 0..9. */
    lb = mnist_labels(3, 10);
    mnist_dir_write(root, "t10k-labels-idx1-ubyte.gz", &lb);
    CHECK_STATUS(lm_mnist_load_split(ctx, root, false, &x, &y), LM_ERR_FORMAT);
    CHECK(x == NULL && y == NULL);
    CHECK_CONTAINS(lm_ctx_error(ctx), "label 10 at index 0");
    free(lb.p);

    /* Images that are not 28 x 28. */
    free(im.p);
    im = mnist_images(3, 28, 27);
    mnist_dir_write(root, "t10k-images-idx3-ubyte.gz", &im);
    CHECK_STATUS(lm_mnist_load_split(ctx, root, false, &x, &y), LM_ERR_FORMAT);
    CHECK(x == NULL && y == NULL);
    CHECK_CONTAINS(lm_ctx_error(ctx), "(N, 28, 28)");
    free(im.p);

    /* Images present but the labels file missing (the images must not leak). */
    im = mnist_images(2, 28, 28);
    mnist_dir_write(root, "train-images-idx3-ubyte.gz", &im);
    CHECK_STATUS(lm_mnist_load_split(ctx, root, true, &x, &y), LM_ERR_IO);
    CHECK(x == NULL && y == NULL);
    CHECK_CONTAINS(lm_ctx_error(ctx), "train-labels-idx1-ubyte.gz");
    free(im.p);

    mnist_dir_clean(root);
}

int main(void) {
    ctx = lm_ctx_new();
    if (!ctx) {
        fprintf(stderr, "cannot create a context\n");
        return 1;
    }
    RUN(test_mnist_test_split);
    RUN(test_mnist_train_split);
    RUN(test_types_roundtrip);
    RUN(test_null_args);
    RUN(test_missing_file);
    RUN(test_bad_header);
    RUN(test_truncated_payload);
    RUN(test_giant_count);
    RUN(test_trailing_bytes);
    RUN(test_corrupt_gzip);
    RUN(test_mnist_synthetic);
    lm_ctx_free(ctx);
    return lmt_summary("idx");
}
