/* Tests of the .npy reader and writer: files written by numpy
 * (tests/data/npy/gen.py), round trips of every dtype, every malformed-input
 * path (from files and from memory) and the atomic save. */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif
#include "lamina/npy.h"
#include "lmtest.h"
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

static lm_ctx *ctx;
static char tmpdir[64];

/* ---- helpers ---- */

static const char *data_dir(void) {
    const char *d = getenv("LAMINA_TEST_DATA");
    return d && *d ? d : "tests/data";
}

static lm_tensor *load_numpy(const char *name, char path[512]) {
    snprintf(path, 512, "%s/npy/%s.npy", data_dir(), name);
    lm_ctx_clear_error(ctx);
    return lm_npy_load(ctx, path);
}

/* The whole file, malloc'd; NULL if unreadable. */
static unsigned char *slurp(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    unsigned char *buf = NULL;
    size_t cap = 0;
    *n = 0;
    for (;;) {
        if (*n == cap) {
            cap = cap ? cap * 2 : 4096;
            unsigned char *nb = realloc(buf, cap);
            if (!nb) break;
            buf = nb;
        }
        size_t r = fread(buf + *n, 1, cap - *n, f);
        if (!r) break;
        *n += r;
    }
    fclose(f);
    return buf;
}

static void write_file(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    if (!f) return;
    if (n) CHECK(fwrite(data, 1, n, f) == n);
    CHECK(fclose(f) == 0);
}

static void check_shape(const lm_tensor *t, lm_shape want) {
    CHECK(lm_tensor_ndim(t) == want.ndim);
    if (lm_tensor_ndim(t) != want.ndim) return;
    for (int i = 0; i < want.ndim; i++) CHECK(lm_tensor_dim(t, i) == want.dims[i]);
}

/* A .npy image: magic, version major.0, the dict padded with spaces and a
 * newline so the data starts at a multiple of 64, then the data. */
typedef struct bytes {
    unsigned char p[4096];
    size_t n;
} bytes;

static void put(bytes *b, const void *src, size_t n) {
    if (b->n + n > sizeof b->p) abort();
    if (n) memcpy(b->p + b->n, src, n);
    b->n += n;
}

static bytes npy_image(int major, const char *dict, const void *data, size_t n) {
    bytes b = {{0}, 0};
    size_t pre = major == 1 ? 10 : 12, dl = strlen(dict);
    size_t hlen = (pre + dl + 1 + 63) / 64 * 64 - pre;
    unsigned char head[12] = {0x93, 'N', 'U', 'M', 'P', 'Y', (unsigned char)major, 0};
    for (size_t i = 0; i < pre - 8; i++) head[8 + i] = (unsigned char)(hlen >> (8 * i));
    put(&b, head, pre);
    put(&b, dict, dl);
    for (size_t i = dl; i + 1 < hlen; i++) put(&b, " ", 1);
    put(&b, "\n", 1);
    put(&b, data, n);
    return b;
}

/* Loads the bytes from memory and from a file; both must fail with a message
 * naming the source and containing sub. */
static void expect_fail_bytes(const void *data, size_t n, const char *sub, int line) {
    lm_ctx_clear_error(ctx);
    lm_tensor *t = lm_npy_load_mem(ctx, data, n, "mem.npy");
    CHECK_MSG(t == NULL, "line %d: loaded from memory", line);
    lm_tensor_free(t);
    CHECK_MSG(strstr(lm_ctx_error(ctx), "mem.npy") && strstr(lm_ctx_error(ctx), sub),
              "line %d: memory: message \"%s\" lacks \"%s\"", line, lm_ctx_error(ctx), sub);
    char path[128];
    snprintf(path, sizeof path, "%s/bad.npy", tmpdir);
    write_file(path, data, n);
    lm_ctx_clear_error(ctx);
    t = lm_npy_load(ctx, path);
    CHECK_MSG(t == NULL, "line %d: loaded from a file", line);
    lm_tensor_free(t);
    CHECK_MSG(strstr(lm_ctx_error(ctx), path) && strstr(lm_ctx_error(ctx), sub),
              "line %d: file: message \"%s\" lacks \"%s\"", line, lm_ctx_error(ctx), sub);
    unlink(path);
}

#define EXPECT_FAIL(b, sub) expect_fail_bytes((b).p, (b).n, sub, __LINE__)
#define EXPECT_FAIL_DICT(dict_, data_, n_, sub_)                                                   \
    do {                                                                                           \
        bytes b_ = npy_image(1, dict_, data_, n_);                                                 \
        expect_fail_bytes(b_.p, b_.n, sub_, __LINE__);                                             \
    } while (0)

/* Loads a valid image from memory and from a file; returns the memory one. */
static lm_tensor *load_both(const bytes *b, int line) {
    lm_ctx_clear_error(ctx);
    lm_tensor *t = lm_npy_load_mem(ctx, b->p, b->n, NULL);
    CHECK_MSG(t != NULL, "line %d: %s", line, lm_ctx_error(ctx));
    char path[128];
    snprintf(path, sizeof path, "%s/ok.npy", tmpdir);
    write_file(path, b->p, b->n);
    lm_tensor *u = lm_npy_load(ctx, path);
    CHECK_MSG(u != NULL, "line %d: %s", line, lm_ctx_error(ctx));
    if (t && u) {
        CHECK(lm_tensor_numel(t) == lm_tensor_numel(u));
        CHECK(lm_tensor_dtype(t) == lm_tensor_dtype(u));
        size_t nb = (size_t)lm_tensor_numel(t) * lm_dtype_size(lm_tensor_dtype(t));
        CHECK(nb == 0 || !memcmp(lm_tensor_cdata(t), lm_tensor_cdata(u), nb));
    }
    lm_tensor_free(u);
    unlink(path);
    return t;
}

/* Names in tmpdir containing ".tmp" (left-over temporary files). */
static int count_temps(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return -1;
    int n = 0;
    for (struct dirent *e; (e = readdir(d));) n += strstr(e->d_name, ".tmp") != NULL;
    closedir(d);
    return n;
}

/* ---- files written by numpy ---- */

static void test_numpy_files(void) {
    char path[512];
    lm_tensor *t = load_numpy("f4", path);
    CHECK_MSG(t != NULL, "%s", lm_ctx_error(ctx));
    if (t) {
        CHECK(lm_tensor_dtype(t) == LM_F32);
        check_shape(t, LM_SHAPE(2, 3));
        for (int i = 0; i < 6; i++) CHECK(lm_tensor_get(t, i) == i * 0.5 - 1);
    }
    lm_tensor_free(t);

    t = load_numpy("f8", path);
    CHECK(t && lm_tensor_dtype(t) == LM_F64);
    if (t) {
        check_shape(t, LM_SHAPE(5));
        for (int i = 0; i < 5; i++) CHECK(lm_tensor_get(t, i) == i / 3.0);
    }
    lm_tensor_free(t);

    t = load_numpy("i4", path);
    CHECK(t && lm_tensor_dtype(t) == LM_I32);
    if (t) {
        check_shape(t, LM_SHAPE(7, 1));
        for (int i = 0; i < 7; i++) CHECK(((int32_t *)lm_tensor_data(t))[i] == i - 3);
    }
    lm_tensor_free(t);

    t = load_numpy("i8", path);
    CHECK(t && lm_tensor_dtype(t) == LM_I64);
    if (t)
        for (int i = 0; i < 4; i++)
            CHECK(((int64_t *)lm_tensor_data(t))[i] == (int64_t)(i - 2) * ((int64_t)1 << 40));
    lm_tensor_free(t);

    t = load_numpy("u1", path);
    CHECK(t && lm_tensor_dtype(t) == LM_U8);
    if (t)
        for (int i = 0; i < 10; i++) CHECK(((uint8_t *)lm_tensor_data(t))[i] == i * 37 % 256);
    lm_tensor_free(t);

    static const int32_t i1[] = {-128, -1, 0, 1, 127}, i2[] = {-32768, -2, 0, 3, 32767},
                         u2[] = {0, 1, 40000, 65535};
    static const int64_t u4[] = {0, 7, 3000000000LL, 4294967295LL};
    t = load_numpy("i1", path);
    CHECK(t && lm_tensor_dtype(t) == LM_I32 && lm_tensor_numel(t) == 5);
    if (t) CHECK(!memcmp(lm_tensor_data(t), i1, sizeof i1));
    lm_tensor_free(t);
    t = load_numpy("i2", path);
    CHECK(t && lm_tensor_dtype(t) == LM_I32 && lm_tensor_numel(t) == 5);
    if (t) CHECK(!memcmp(lm_tensor_data(t), i2, sizeof i2));
    lm_tensor_free(t);
    t = load_numpy("u2", path);
    CHECK(t && lm_tensor_dtype(t) == LM_I32 && lm_tensor_numel(t) == 4);
    if (t) CHECK(!memcmp(lm_tensor_data(t), u2, sizeof u2));
    lm_tensor_free(t);
    t = load_numpy("u4", path);
    CHECK(t && lm_tensor_dtype(t) == LM_I64 && lm_tensor_numel(t) == 4);
    if (t) CHECK(!memcmp(lm_tensor_data(t), u4, sizeof u4));
    lm_tensor_free(t);

    t = load_numpy("b1", path);
    CHECK(t && lm_tensor_dtype(t) == LM_U8);
    if (t) {
        static const uint8_t want[] = {1, 0, 1, 0, 0, 1};
        check_shape(t, LM_SHAPE(2, 3));
        CHECK(!memcmp(lm_tensor_data(t), want, 6));
    }
    lm_tensor_free(t);

    t = load_numpy("scalar", path);
    CHECK(t && lm_tensor_dtype(t) == LM_F32 && lm_tensor_ndim(t) == 0 && lm_tensor_numel(t) == 1);
    if (t) CHECK(lm_tensor_get(t, 0) == 3.5);
    lm_tensor_free(t);

    t = load_numpy("empty", path);
    CHECK(t && lm_tensor_numel(t) == 0);
    if (t) check_shape(t, LM_SHAPE(0, 3));
    lm_tensor_free(t);

    t = load_numpy("dims4", path);
    CHECK(t != NULL);
    if (t) {
        check_shape(t, LM_SHAPE(1, 2, 1, 3));
        for (int i = 0; i < 6; i++) CHECK(lm_tensor_get(t, i) == i);
    }
    lm_tensor_free(t);

    t = load_numpy("v2", path);
    CHECK_MSG(t && lm_tensor_dtype(t) == LM_F32 && lm_tensor_numel(t) == 3, "%s",
              lm_ctx_error(ctx));
    if (t) CHECK(lm_tensor_get(t, 2) == 2);
    lm_tensor_free(t);
    t = load_numpy("v3", path);
    CHECK_MSG(t && lm_tensor_dtype(t) == LM_I64 && lm_tensor_numel(t) == 3, "%s",
              lm_ctx_error(ctx));
    if (t) CHECK(lm_tensor_get(t, 2) == 2);
    lm_tensor_free(t);
}

static void expect_refused(const char *name, const char *sub) {
    char path[512];
    lm_tensor *t = load_numpy(name, path);
    CHECK_MSG(t == NULL, "%s loaded", name);
    lm_tensor_free(t);
    CHECK_CONTAINS(lm_ctx_error(ctx), path);
    CHECK_CONTAINS(lm_ctx_error(ctx), sub);
}

static void test_numpy_refused(void) {
    expect_refused("fortran", "Fortran");
    expect_refused("bigendian", "big-endian");
    expect_refused("bigendian", "'>f4'");
    expect_refused("object", "object arrays");
    expect_refused("unicode", "unicode");
    expect_refused("structured", "structured");
    expect_refused("complex", "complex");
    expect_refused("f2", "unsupported dtype: descr '<f2'");
}

/* Lamina writes the same bytes as numpy for the same array. */
static void test_same_bytes_as_numpy(void) {
    static const char *names[] = {"f4", "f8", "i4", "i8", "u1", "scalar", "empty", "dims4"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char path[512], out[128];
        lm_tensor *t = load_numpy(names[i], path);
        CHECK(t != NULL);
        if (!t) continue;
        snprintf(out, sizeof out, "%s/%s.npy", tmpdir, names[i]);
        CHECK_STATUS(lm_npy_save(t, out), LM_OK);
        size_t na = 0, nb = 0;
        unsigned char *a = slurp(path, &na), *b = slurp(out, &nb);
        CHECK_MSG(a && b && na == nb && !memcmp(a, b, na), "%s differs from numpy's", names[i]);
        void *m = NULL;
        size_t nm = 0;
        CHECK_STATUS(lm_npy_save_mem(t, &m, &nm), LM_OK);
        CHECK(m && nm == nb && b && !memcmp(m, b, nm));
        free(m);
        free(a);
        free(b);
        unlink(out);
        lm_tensor_free(t);
    }
}

/* ---- round trips ---- */

static void roundtrip(lm_dtype dt, lm_shape shape) {
    char path[128], sbuf[100];
    snprintf(path, sizeof path, "%s/rt.npy", tmpdir);
    lm_tensor *t = lm_tensor_new(ctx, dt, shape);
    CHECK(t != NULL);
    if (!t) return;
    int64_t n = lm_tensor_numel(t);
    for (int64_t i = 0; i < n; i++) {
        double v = dt == LM_U8 ? (double)(i * 7 % 256) : (double)(i * 3 - 5);
        if (dt == LM_F32 || dt == LM_F64) v += 0.25;
        if (dt == LM_I64) v *= 1e12;
        lm_tensor_set(t, i, v);
    }
    CHECK_STATUS(lm_npy_save(t, path), LM_OK);
    size_t fn = 0;
    unsigned char *file = slurp(path, &fn);
    size_t es = lm_dtype_size(dt), hl = file && fn >= 10 ? file[8] | (size_t)file[9] << 8 : 0;
    CHECK(file && fn == 10 + hl + (size_t)n * es && (10 + hl) % 64 == 0 && file[6] == 1);
    free(file);
    lm_tensor *u = lm_npy_load(ctx, path);
    CHECK_MSG(u != NULL, "%s %s: %s", lm_dtype_name(dt), lm_shape_str(shape, sbuf, sizeof sbuf),
              lm_ctx_error(ctx));
    if (u) {
        CHECK(lm_tensor_dtype(u) == dt);
        check_shape(u, shape);
        CHECK(n == 0 || !memcmp(lm_tensor_cdata(u), lm_tensor_cdata(t), (size_t)n * es));
    }
    lm_tensor_free(u);
    lm_tensor_free(t);
    unlink(path);
}

static void test_roundtrip(void) {
    lm_dtype dts[] = {LM_F32, LM_F64, LM_I32, LM_I64, LM_U8};
    lm_shape shapes[] = {LM_SHAPE(2, 3),    LM_SCALAR,    LM_SHAPE(0),
                         LM_SHAPE(3, 0, 2), LM_SHAPE(17), LM_SHAPE(2, 1, 2, 1, 2, 1, 2, 3)};
    for (size_t i = 0; i < sizeof dts / sizeof dts[0]; i++)
        for (size_t j = 0; j < sizeof shapes / sizeof shapes[0]; j++) roundtrip(dts[i], shapes[j]);
    CHECK(count_temps(tmpdir) == 0);
}

/* Views are written in row-major order of the view. */
static void test_save_views(void) {
    char path[128];
    snprintf(path, sizeof path, "%s/view.npy", tmpdir);
    lm_tensor *t = lm_tensor_new(ctx, LM_I32, LM_SHAPE(3, 4));
    for (int i = 0; i < 12; i++) lm_tensor_set(t, i, i);
    int perm[2] = {1, 0};
    lm_tensor *tr = lm_tensor_transpose(t, perm);
    CHECK(tr && !lm_tensor_is_contiguous(tr));
    CHECK_STATUS(lm_npy_save(tr, path), LM_OK);
    lm_tensor *u = lm_npy_load(ctx, path);
    CHECK(u != NULL);
    if (u) {
        check_shape(u, LM_SHAPE(4, 3));
        for (int i = 0; i < 12; i++) CHECK(lm_tensor_get(u, i) == (i % 3) * 4 + i / 3);
    }
    lm_tensor_free(u);
    lm_tensor *sl = lm_tensor_slice(t, 1, 1, 4, 2); /* columns 1, 3 */
    CHECK(sl != NULL);
    if (sl) {
        CHECK_STATUS(lm_npy_save(sl, path), LM_OK);
        u = lm_npy_load(ctx, path);
        CHECK(u && lm_tensor_numel(u) == lm_tensor_numel(sl));
        for (int64_t i = 0; u && i < lm_tensor_numel(u); i++)
            CHECK(lm_tensor_get(u, i) == lm_tensor_get(sl, i));
        lm_tensor_free(u);
    }
    /* A large strided view crosses the writer's chunk boundary. */
    lm_tensor *big = lm_tensor_new(ctx, LM_F64, LM_SHAPE(100, 70));
    for (int i = 0; i < 7000; i++) lm_tensor_set(big, i, i * 0.5);
    lm_tensor *bt = lm_tensor_transpose(big, perm);
    CHECK_STATUS(lm_npy_save(bt, path), LM_OK);
    u = lm_npy_load(ctx, path);
    CHECK(u && lm_tensor_numel(u) == 7000);
    int bad = 0;
    for (int i = 0; u && i < 7000; i++)
        bad += lm_tensor_get(u, i) != ((i % 100) * 70 + i / 100) * 0.5;
    CHECK(bad == 0);
    lm_tensor_free(u);
    lm_tensor_free(bt);
    lm_tensor_free(big);
    lm_tensor_free(sl);
    lm_tensor_free(tr);
    lm_tensor_free(t);
    unlink(path);
}

/* ---- header variants that numpy would accept ---- */

static void test_header_variants(void) {
    float f[3] = {1, 2, 3};
    struct {
        const char *dict;
        int ndim;
    } ok[] = {
        {"{'shape': (3,), 'fortran_order': False, 'descr': '<f4'}", 1},
        {"{\"descr\": \"<f4\", \"fortran_order\": False, \"shape\": (3,)}", 1},
        {"{ 'descr' :'<f4' ,\t'fortran_order':False,'shape':( 3 , ) , }", 1},
        {"{'descr': '=f4', 'fortran_order': False, 'shape': (3L,), }", 1},
        {"{'descr': '<f4', 'fortran_order': True, 'shape': (3,), }", 1},
        {"{'descr': '<f4', 'fortran_order': True, 'shape': (1, 3, 1), }", 3},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (3, 1), }\n\n", 2},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        bytes b = npy_image(1, ok[i].dict, f, sizeof f);
        lm_tensor *t = load_both(&b, __LINE__);
        CHECK_MSG(t && lm_tensor_ndim(t) == ok[i].ndim && lm_tensor_numel(t) == 3, "%s",
                  ok[i].dict);
        if (t) CHECK(lm_tensor_get(t, 2) == 3);
        lm_tensor_free(t);
    }
    /* One-byte types with any byte order mark. */
    uint8_t u[2] = {0, 200};
    const char *onebyte[] = {"{'descr': '|u1', 'fortran_order': False, 'shape': (2,)}",
                             "{'descr': '>u1', 'fortran_order': False, 'shape': (2,)}",
                             "{'descr': 'u1', 'fortran_order': False, 'shape': (2,)}",
                             "{'descr': '<b1', 'fortran_order': False, 'shape': (2,)}"};
    for (size_t i = 0; i < 4; i++) {
        bytes b = npy_image(1, onebyte[i], u, 2);
        lm_tensor *t = load_both(&b, __LINE__);
        CHECK(t && lm_tensor_dtype(t) == LM_U8);
        if (t) CHECK(lm_tensor_get(t, 1) == (i == 3 ? 1 : 200)); /* bool: any non-zero is 1 */
        lm_tensor_free(t);
    }
    /* Versions 2.0 and 3.0 with hand-made headers. */
    for (int major = 2; major <= 3; major++) {
        bytes b = npy_image(major, "{'descr': '<i2', 'fortran_order': False, 'shape': ()}",
                            "\xfe\xff", 2);
        lm_tensor *t = load_both(&b, __LINE__);
        CHECK(t && lm_tensor_ndim(t) == 0 && lm_tensor_get(t, 0) == -2);
        lm_tensor_free(t);
    }
    /* A header not padded to 64 and data of odd alignment still loads. */
    bytes b = {{0}, 0};
    const char *d = "{'descr':'<f8','fortran_order':False,'shape':(1,)}\n";
    double one = 1;
    unsigned char head[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, (unsigned char)strlen(d), 0};
    put(&b, head, 10);
    put(&b, d, strlen(d));
    put(&b, &one, 8);
    lm_tensor *t = load_both(&b, __LINE__);
    CHECK(t && lm_tensor_get(t, 0) == 1);
    lm_tensor_free(t);
}

/* ---- malformed input ---- */

static void test_bad_prefix(void) {
    expect_fail_bytes("", 0, "truncated", __LINE__);
    expect_fail_bytes("\x93NUM", 4, "truncated", __LINE__);
    expect_fail_bytes("PK\x03\x04 this is a zip", 19, "bad magic", __LINE__);
    expect_fail_bytes("\x93NUMPx\x01\x00", 8, "bad magic", __LINE__);
    expect_fail_bytes("\x93NUMPY", 6, "truncated header", __LINE__);
    expect_fail_bytes("\x93NUMPY\x01", 7, "truncated header", __LINE__);
    expect_fail_bytes("\x93NUMPY\x01\x00\x10", 9, "truncated header", __LINE__);
    expect_fail_bytes("\x93NUMPY\x02\x00\x10\x00\x00", 11, "truncated header", __LINE__);
    expect_fail_bytes("\x93NUMPY\x04\x00\x10\x00", 10, "version 4.0", __LINE__);
    expect_fail_bytes("\x93NUMPY\x01\x01\x10\x00", 10, "version 1.1", __LINE__);
    expect_fail_bytes("\x93NUMPY\x00\x00\x10\x00", 10, "version 0.0", __LINE__);
    /* Header lengths beyond the file, up to the largest 4-byte length. */
    expect_fail_bytes("\x93NUMPY\x01\x00\x10\x00{}", 12, "runs past the end", __LINE__);
    expect_fail_bytes("\x93NUMPY\x02\x00\xff\xff\xff\xff{}", 14, "runs past the end", __LINE__);
    expect_fail_bytes("\x93NUMPY\x03\x00\x00\x00\x00\x80{}", 14, "runs past the end", __LINE__);
    /* An empty header is no dict. */
    expect_fail_bytes("\x93NUMPY\x01\x00\x00\x00", 10, "expected '{'", __LINE__);
}

static void test_bad_dict(void) {
    float f[6] = {0};
    const size_t n3 = 3 * sizeof(float);
    EXPECT_FAIL_DICT("'descr': '<f4'", f, n3, "expected '{'");
    EXPECT_FAIL_DICT("{'descr' '<f4', 'fortran_order': False, 'shape': (3,)}", f, n3,
                     "expected ':'");
    EXPECT_FAIL_DICT("{descr: '<f4', 'fortran_order': False, 'shape': (3,)}", f, n3,
                     "expected a quoted string");
    EXPECT_FAIL_DICT("{'descr: '<f4', 'fortran_order': False, 'shape': (3,)}", f, n3,
                     "expected ':'");
    EXPECT_FAIL_DICT("{'descr': '<f4", f, n3, "unterminated string");
    EXPECT_FAIL_DICT("{'descr': '<f4', 'fortran_order': False, 'shape': (3,)", f, n3,
                     "expected ',' or '}'");
    EXPECT_FAIL_DICT("{'descr': '<f4', 'fortran_order': False, 'shape': (3,), 'shape': (3,)}", f,
                     n3, "duplicate key 'shape'");
    EXPECT_FAIL_DICT("{'descr': '<f4' 'fortran_order': False, 'shape': (3,)}", f, n3,
                     "expected ',' or '}'");
    EXPECT_FAIL_DICT("{'descr': '<f4', 'fortran_order': False, 'shape': (3,), 'x': 1}", f, n3,
                     "unexpected key 'x'");
    EXPECT_FAIL_DICT("{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (3,)}", f,
                     n3, "duplicate key 'descr'");
    EXPECT_FAIL_DICT("{'descr': '<f4', 'shape': (3,)}", f, n3, "missing key 'fortran_order'");
    EXPECT_FAIL_DICT("{'fortran_order': False, 'shape': (3,)}", f, n3, "missing key 'descr'");
    EXPECT_FAIL_DICT("{'descr': '<f4', 'fortran_order': False}", f, n3, "missing key 'shape'");
    EXPECT_FAIL_DICT("{'descr': '<f4', 'fortran_order': False, 'shape': (3,)} x", f, n3,
                     "unexpected text after the dict");
    /* A NUL byte in the padding. */
    bytes b = npy_image(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (3,)}", f, n3);
    b.p[10 + 56] = 0;
    EXPECT_FAIL(b, "unexpected text after the dict");
    EXPECT_FAIL_DICT("{'descr': '<f4', 'fortran_order': 0, 'shape': (3,)}", f, n3, "True or False");
    EXPECT_FAIL_DICT("{'descr': '<f4', 'fortran_order': Falsey, 'shape': (3,)}", f, n3,
                     "True or False");
    EXPECT_FAIL_DICT("{'descr': '<f4', 'fortran_order': False, 'shape': [3]}", f, n3,
                     "must be a tuple");
    EXPECT_FAIL_DICT("{'descr': '<f4', 'fortran_order': False, 'shape': (3)}", f, n3,
                     "is not a tuple");
    EXPECT_FAIL_DICT("{'descr': '<f4', 'fortran_order': False, 'shape': (3 1)}", f, n3,
                     "expected ',' or ')'");
    EXPECT_FAIL_DICT("{'descr': '<f4', 'fortran_order': False, 'shape': (3,,)}", f, n3,
                     "expected a dimension");
    EXPECT_FAIL_DICT("{'descr': '<f4', 'fortran_order': False, 'shape': (3,", f, n3,
                     "expected a dimension");
    EXPECT_FAIL_DICT("{'descr': '<f4', 'fortran_order': False, 'shape': (-3,)}", f, n3,
                     "negative dimension");
    EXPECT_FAIL_DICT("{'descr': '<f4', 'fortran_order': False, 'shape': (1,1,1,1,1,1,1,1,3)}", f,
                     n3, "more than 8 dimensions");
    EXPECT_FAIL_DICT("{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,)}",
                     f, n3, "dimension too large");
    EXPECT_FAIL_DICT("{'descr': '<f\\x34', 'fortran_order': False, 'shape': (3,)}", f, n3,
                     "escape sequence");
    EXPECT_FAIL_DICT("{'descr': 3, 'fortran_order': False, 'shape': (3,)}", f, n3,
                     "expected a quoted string");
    /* The messages show the header. */
    EXPECT_FAIL_DICT("{'descr': '<f4', 'fortran_order': maybe, 'shape': (3,)}", f, n3,
                     "header: \"{'descr': '<f4', 'fortran_order': maybe");
}

static void test_bad_descr(void) {
    float f[6] = {0};
    const size_t n = 3 * sizeof(float);
    EXPECT_FAIL_DICT("{'descr': '>f4', 'fortran_order': False, 'shape': (3,)}", f, n,
                     "big-endian data (descr '>f4')");
    EXPECT_FAIL_DICT("{'descr': '>i2', 'fortran_order': False, 'shape': (6,)}", f, n, "big-endian");
    EXPECT_FAIL_DICT("{'descr': '|f4', 'fortran_order': False, 'shape': (3,)}", f, n,
                     "'|' is for one-byte types");
    EXPECT_FAIL_DICT("{'descr': '|O', 'fortran_order': False, 'shape': (3,)}", f, n,
                     "object arrays");
    EXPECT_FAIL_DICT("{'descr': '<U1', 'fortran_order': False, 'shape': (3,)}", f, n, "unicode");
    EXPECT_FAIL_DICT("{'descr': '|S4', 'fortran_order': False, 'shape': (3,)}", f, n,
                     "byte string");
    EXPECT_FAIL_DICT("{'descr': '|V4', 'fortran_order': False, 'shape': (3,)}", f, n, "structured");
    EXPECT_FAIL_DICT("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (3,)}", f, n,
                     "structured dtypes");
    EXPECT_FAIL_DICT("{'descr': '<u8', 'fortran_order': False, 'shape': (3,)}", f, n,
                     "unsupported dtype: descr '<u8'");
    EXPECT_FAIL_DICT("{'descr': '<f4 ', 'fortran_order': False, 'shape': (3,)}", f, n,
                     "unsupported dtype");
    EXPECT_FAIL_DICT("{'descr': '', 'fortran_order': False, 'shape': (3,)}", f, n,
                     "unsupported dtype: descr ''");
    EXPECT_FAIL_DICT("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3)}", f, 24,
                     "Fortran-order");
}

static void test_bad_sizes(void) {
    float f[4] = {1, 2, 3, 4};
    EXPECT_FAIL_DICT("{'descr': '<f4', 'fortran_order': False, 'shape': (3,)}", f, 8,
                     "truncated data: shape (3,) of 4-byte elements needs 12 bytes of data but 8");
    EXPECT_FAIL_DICT("{'descr': '<f4', 'fortran_order': False, 'shape': (3,)}", f, 16,
                     "trailing data after the array");
    EXPECT_FAIL_DICT("{'descr': '<f4', 'fortran_order': False, 'shape': (3,)}", f, 13,
                     "trailing data");
    EXPECT_FAIL_DICT("{'descr': '<f4', 'fortran_order': False, 'shape': ()}", f, 0,
                     "truncated data");
    EXPECT_FAIL_DICT("{'descr': '<f4', 'fortran_order': False, 'shape': (0, 5)}", f, 4,
                     "trailing data");
    /* Huge shapes against a tiny file: refused before any allocation. */
    EXPECT_FAIL_DICT("{'descr': '<f4', 'fortran_order': False, 'shape': (1000000000000,)}", f, 16,
                     "needs 4000000000000 bytes");
    EXPECT_FAIL_DICT("{'descr': '<f8', 'fortran_order': False, 'shape': (4294967296, 4294967296)}",
                     f, 16, "too large (size overflow)");
    EXPECT_FAIL_DICT("{'descr': '<f4', 'fortran_order': False, 'shape': (4611686018427387904,)}", f,
                     16, "too large");
    EXPECT_FAIL_DICT("{'descr': '|u1', 'fortran_order': False, 'shape': (9223372036854775807, 2)}",
                     f, 16, "too large");
    /* Zero-sized but with a huge other dimension is fine. */
    bytes b = npy_image(
        1, "{'descr': '<i8', 'fortran_order': False, 'shape': (0, 9223372036854775807)}", NULL, 0);
    lm_tensor *t = load_both(&b, __LINE__);
    CHECK(t && lm_tensor_numel(t) == 0);
    lm_tensor_free(t);
}

/* Every prefix of a valid image fails cleanly (and never reads out of bounds). */
static void test_truncations(void) {
    int16_t v[5] = {1, -2, 3, -4, 5};
    bytes b = npy_image(2, "{'descr': '<i2', 'fortran_order': False, 'shape': (5,)}", v, sizeof v);
    for (size_t n = 0; n < b.n; n++) {
        unsigned char *copy = malloc(n ? n : 1); /* exact size, so ASan sees overreads */
        memcpy(copy, b.p, n);
        lm_tensor *t = lm_npy_load_mem(ctx, copy, n, "cut");
        CHECK_MSG(t == NULL, "prefix of %zu bytes loaded", n);
        CHECK(strstr(lm_ctx_error(ctx), "cut") != NULL);
        lm_tensor_free(t);
        free(copy);
    }
    lm_tensor *t = lm_npy_load_mem(ctx, b.p, b.n, "whole");
    CHECK(t && lm_tensor_get(t, 3) == -4);
    lm_tensor_free(t);
}

static void test_bad_args(void) {
    CHECK(lm_npy_load(NULL, "x.npy") == NULL);
    CHECK(lm_npy_load(ctx, NULL) == NULL);
    CHECK_CONTAINS(lm_ctx_error(ctx), "path is NULL");
    CHECK(lm_npy_load_mem(ctx, NULL, 5, "src") == NULL);
    CHECK_CONTAINS(lm_ctx_error(ctx), "src: data is NULL");
    CHECK(lm_npy_load_mem(ctx, NULL, 0, NULL) == NULL);
    CHECK_CONTAINS(lm_ctx_error(ctx), "<memory>: truncated");
    char path[128];
    snprintf(path, sizeof path, "%s/missing.npy", tmpdir);
    CHECK(lm_npy_load(ctx, path) == NULL);
    CHECK_CONTAINS(lm_ctx_error(ctx), "cannot open");
    CHECK_CONTAINS(lm_ctx_error(ctx), path);
    CHECK_CONTAINS(lm_ctx_error(ctx), strerror(ENOENT));
    CHECK(lm_npy_load(ctx, tmpdir) == NULL);
    CHECK_CONTAINS(lm_ctx_error(ctx), "is a directory");
    CHECK(lm_npy_load(ctx, "/dev/null") == NULL);
    CHECK_CONTAINS(lm_ctx_error(ctx), "/dev/null is not a regular file");

    CHECK_STATUS(lm_npy_save(NULL, path), LM_ERR_ARG);
    lm_tensor *t = lm_tensor_new(ctx, LM_F32, LM_SHAPE(2));
    CHECK_STATUS(lm_npy_save(t, NULL), LM_ERR_ARG);
    CHECK_CONTAINS(lm_ctx_error(ctx), "path is NULL");
    void *m = (void *)1;
    size_t n = 1;
    CHECK_STATUS(lm_npy_save_mem(NULL, &m, &n), LM_ERR_ARG);
    CHECK(m == NULL && n == 0);
    CHECK_STATUS(lm_npy_save_mem(t, NULL, &n), LM_ERR_ARG);
    lm_tensor_free(t);
}

/* ---- atomic save ---- */

static void test_atomic_save(void) {
    char path[128], sub[128];
    lm_tensor *t = lm_tensor_new(ctx, LM_F32, LM_SHAPE(4));
    lm_tensor_fill(t, 2);

    /* Into a missing directory: fails, creates nothing. */
    snprintf(path, sizeof path, "%s/no/such/dir/x.npy", tmpdir);
    CHECK_STATUS(lm_npy_save(t, path), LM_ERR_IO);
    CHECK_CONTAINS(lm_ctx_error(ctx), path);
    CHECK_CONTAINS(lm_ctx_error(ctx), "temporary file");
    CHECK(count_temps(tmpdir) == 0);

    /* Over a directory: the rename fails, the temporary file goes, the directory stays. */
    snprintf(sub, sizeof sub, "%s/adir", tmpdir);
    CHECK(mkdir(sub, 0755) == 0);
    CHECK_STATUS(lm_npy_save(t, sub), LM_ERR_IO);
    CHECK_CONTAINS(lm_ctx_error(ctx), sub);
    CHECK_CONTAINS(lm_ctx_error(ctx), "rename failed");
    CHECK(count_temps(tmpdir) == 0);
    struct stat sb;
    CHECK(stat(sub, &sb) == 0 && S_ISDIR(sb.st_mode));
    rmdir(sub);

    /* Overwriting an existing file replaces it whole and keeps its permissions. */
    snprintf(path, sizeof path, "%s/keep.npy", tmpdir);
    write_file(path, "old contents", 12);
    CHECK(chmod(path, 0640) == 0);
    CHECK_STATUS(lm_npy_save(t, path), LM_OK);
    CHECK(stat(path, &sb) == 0 && (sb.st_mode & 0777) == 0640);
    lm_tensor *u = lm_npy_load(ctx, path);
    CHECK(u && lm_tensor_numel(u) == 4 && lm_tensor_get(u, 3) == 2);
    lm_tensor_free(u);
    unlink(path);

    /* A new file gets 0666 less the umask, not mkstemp's 0600. */
    mode_t old = umask(022);
    CHECK_STATUS(lm_npy_save(t, path), LM_OK);
    CHECK(stat(path, &sb) == 0 && (sb.st_mode & 0777) == 0644);
    umask(old);
    unlink(path);

    /* A relative path (no directory part) works too. */
    char cwd[512];
    CHECK(getcwd(cwd, sizeof cwd) != NULL);
    CHECK(chdir(tmpdir) == 0);
    CHECK_STATUS(lm_npy_save(t, "rel.npy"), LM_OK);
    u = lm_npy_load(ctx, "rel.npy");
    CHECK(u != NULL);
    lm_tensor_free(u);
    unlink("rel.npy");
    CHECK(count_temps(".") == 0);
    CHECK(chdir(cwd) == 0);
    lm_tensor_free(t);
}

int main(void) {
    ctx = lm_ctx_new();
    strcpy(tmpdir, "/tmp/lamina_npy_XXXXXX");
    if (!ctx || !mkdtemp(tmpdir)) {
        fprintf(stderr, "setup failed\n");
        return 1;
    }
    RUN(test_numpy_files);
    RUN(test_numpy_refused);
    RUN(test_same_bytes_as_numpy);
    RUN(test_roundtrip);
    RUN(test_save_views);
    RUN(test_header_variants);
    RUN(test_bad_prefix);
    RUN(test_bad_dict);
    RUN(test_bad_descr);
    RUN(test_bad_sizes);
    RUN(test_truncations);
    RUN(test_bad_args);
    RUN(test_atomic_save);
    CHECK(count_temps(tmpdir) == 0);
    CHECK(rmdir(tmpdir) == 0);
    lm_ctx_free(ctx);
    return lmt_summary("test_npy");
}
