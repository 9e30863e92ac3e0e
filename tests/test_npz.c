/* NPZ archives: files written by numpy (tests/data/npz/gen.py), round trips,
 * crafted archives refused with a message, and damaged bytes that must fail
 * cleanly (run under ASan to catch reads out of bounds). */
#include "lmtest.h"
#include <lamina/npz.h>
#include <lamina/npy.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zip.h>

static lm_ctx *ctx;
static char dir[512];
static char tmpdir[] = "/tmp/lm_npz_XXXXXX";

static const char *data_path(const char *name) {
    static char buf[1024];
    snprintf(buf, sizeof buf, "%s/npz/%s", dir, name);
    return buf;
}

static const char *tmp_path(const char *name) {
    static char buf[1024];
    snprintf(buf, sizeof buf, "%s/%s", tmpdir, name);
    return buf;
}

static bool shape_is(const lm_tensor *t, lm_shape s) {
    if (!t || lm_tensor_ndim(t) != s.ndim) return false;
    for (int i = 0; i < s.ndim; i++)
        if (lm_tensor_dim(t, i) != s.dims[i]) return false;
    return true;
}

/* The arrays gen.py writes into plain.npz and compressed.npz. */
static void check_arrays(const lm_npz *z) {
    CHECK(lm_npz_count(z) == 4);
    const char *want[] = {"x", "y", "s", "u"};
    for (int i = 0; i < 4; i++) CHECK(lm_npz_name(z, i) && !strcmp(lm_npz_name(z, i), want[i]));
    lm_tensor *x = lm_npz_get(z, "x"), *y = lm_npz_get(z, "y"), *s = lm_npz_get(z, "s"),
              *u = lm_npz_get(z, "u");
    CHECK(x && lm_tensor_dtype(x) == LM_F32 && shape_is(x, LM_SHAPE(3, 4)));
    CHECK(y && lm_tensor_dtype(y) == LM_I64 && shape_is(y, LM_SHAPE(3)));
    CHECK(s && lm_tensor_dtype(s) == LM_F64 && lm_tensor_ndim(s) == 0);
    CHECK(u && lm_tensor_dtype(u) == LM_U8 && shape_is(u, LM_SHAPE(2, 5)));
    if (!x || !y || !s || !u) return;
    for (int i = 0; i < 12; i++) CHECK(lm_tensor_get(x, i) == i * 0.25 - 1);
    CHECK(lm_tensor_get(y, 0) == 2 && lm_tensor_get(y, 1) == 0 && lm_tensor_get(y, 2) == 1);
    CHECK(lm_tensor_get(s, 0) == 1.5);
    for (int i = 0; i < 10; i++) CHECK(lm_tensor_get(u, i) == i * 37 % 256);
    CHECK(lm_npz_get(z, "missing") == NULL);
    CHECK(lm_npz_array(z, 4) == NULL && lm_npz_name(z, -1) == NULL);
}

static void test_numpy_files(void) {
    const char *files[] = {"plain.npz", "compressed.npz"};
    for (int f = 0; f < 2; f++) {
        lm_npz *z = lm_npz_load(ctx, data_path(files[f]));
        CHECK_MSG(z, "%s: %s", files[f], lm_ctx_error(ctx));
        if (z) check_arrays(z);
        lm_npz_free(z);
    }
    lm_npz *z = lm_npz_load(ctx, data_path("positional.npz"));
    CHECK(z && lm_npz_count(z) == 2);
    if (z) {
        CHECK(!strcmp(lm_npz_name(z, 0), "arr_0") && !strcmp(lm_npz_name(z, 1), "arr_1"));
        CHECK(shape_is(lm_npz_get(z, "arr_0"), LM_SHAPE(2, 2)));
        CHECK(lm_tensor_dtype(lm_npz_get(z, "arr_1")) == LM_I32);
    }
    lm_npz_free(z);
    z = lm_npz_load(ctx, data_path("empty.npz"));
    CHECK(z && lm_npz_count(z) == 0);
    lm_npz_free(z);
    z = lm_npz_load(ctx, data_path("mnist_like.npz"));
    CHECK(z && lm_npz_count(z) == 4);
    if (z) {
        CHECK(shape_is(lm_npz_get(z, "x_train"), LM_SHAPE(4, 3, 3)));
        CHECK(shape_is(lm_npz_get(z, "y_test"), LM_SHAPE(2)));
        CHECK(lm_tensor_get(lm_npz_get(z, "x_test"), 17) == 17);
    }
    lm_npz_free(z);
}

static void test_round_trip(void) {
    lm_tensor *a = lm_tensor_new(ctx, LM_F32, LM_SHAPE(5, 7));
    lm_tensor *b = lm_tensor_new(ctx, LM_I32, LM_SHAPE(4));
    lm_tensor *c = lm_tensor_new(ctx, LM_F64, LM_SHAPE(0, 3));
    for (int i = 0; i < 35; i++) lm_tensor_set(a, i, i * 0.1 - 2);
    for (int i = 0; i < 4; i++) lm_tensor_set(b, i, -i * 1000);
    /* A non-contiguous view is written in row-major order. */
    lm_tensor *at = lm_tensor_transpose(a, (const int[]){1, 0});
    const char *names[] = {"a", "b", "c", "a_t"};
    const lm_tensor *arr[] = {a, b, c, at};
    for (int comp = 0; comp < 2; comp++) {
        const char *p = tmp_path(comp ? "rt_c.npz" : "rt.npz");
        CHECK_STATUS(lm_npz_save(ctx, p, 4, names, arr, comp), LM_OK);
        lm_npz *z = lm_npz_load(ctx, p);
        CHECK_MSG(z && lm_npz_count(z) == 4, "%s", lm_ctx_error(ctx));
        if (!z) continue;
        for (int i = 0; i < 4; i++) CHECK(!strcmp(lm_npz_name(z, i), names[i]));
        lm_tensor *a2 = lm_npz_get(z, "a"), *at2 = lm_npz_get(z, "a_t");
        CHECK(shape_is(a2, LM_SHAPE(5, 7)) && shape_is(at2, LM_SHAPE(7, 5)));
        for (int i = 0; i < 35 && a2 && at2; i++) {
            CHECK(lm_tensor_get(a2, i) == lm_tensor_get(a, i));
            CHECK(lm_tensor_get(at2, i) == lm_tensor_get(a, (i % 5) * 7 + i / 5));
        }
        CHECK(lm_tensor_dtype(lm_npz_get(z, "b")) == LM_I32 &&
              lm_tensor_get(lm_npz_get(z, "b"), 3) == -3000);
        CHECK(shape_is(lm_npz_get(z, "c"), LM_SHAPE(0, 3)));
        lm_npz_free(z);
    }
    /* In memory, and byte-identical from one save to the next (fixed time stamps). */
    void *m1, *m2;
    size_t n1, n2;
    CHECK_STATUS(lm_npz_save_mem(ctx, 2, names, arr, true, &m1, &n1), LM_OK);
    CHECK_STATUS(lm_npz_save_mem(ctx, 2, names, arr, true, &m2, &n2), LM_OK);
    CHECK(n1 == n2 && m1 && m2 && !memcmp(m1, m2, n1));
    lm_npz *z = lm_npz_load_mem(ctx, m1, n1, "mem");
    CHECK(z && lm_npz_count(z) == 2);
    lm_npz_free(z);
    free(m1);
    free(m2);
    /* No arrays at all. */
    CHECK_STATUS(lm_npz_save(ctx, tmp_path("none.npz"), 0, NULL, NULL, false), LM_OK);
    z = lm_npz_load(ctx, tmp_path("none.npz"));
    CHECK(z && lm_npz_count(z) == 0);
    lm_npz_free(z);
    lm_tensor_free(at);
    lm_tensor_free(a);
    lm_tensor_free(b);
    lm_tensor_free(c);
}

/* Each crafted archive fails with a message holding `want` and the file name. */
static void expect_refused(const char *file, const char *want) {
    lm_ctx_clear_error(ctx);
    lm_npz *z = lm_npz_load(ctx, data_path(file));
    CHECK_MSG(z == NULL, "%s loaded", file);
    lm_npz_free(z);
    CHECK_CONTAINS(lm_ctx_error(ctx), want);
    CHECK_CONTAINS(lm_ctx_error(ctx), file);
}

static void test_bad_archives(void) {
    expect_refused("bad_nested.npz", "a path (nested members");
    expect_refused("bad_dotdot.npz", "\"..\"");
    expect_refused("bad_absolute.npz", "a path");
    expect_refused("bad_notnpy.npz", "member \"x.txt\" is not an .npy array");
    expect_refused("bad_noname.npz", "an empty array name");
    expect_refused("bad_npy.npz", "bad magic");
    expect_refused("bad_npy.npz", "x.npy");
    expect_refused("bad_bzip2.npz", "compression method 12");
    expect_refused("bad_truncated.npz", "not a readable zip archive");
    expect_refused("bad_garbage.npz", "not a readable zip archive");
    expect_refused("bad_duplicate.npz", "two members have the same name");
    expect_refused("bad_bomb.npz", "declares 2147483632 bytes, more than its");
    expect_refused("bad_short.npz", "more data than its declared");
    expect_refused("bad_long.npz", "x.npy");
    expect_refused("bad_crc.npz", "is corrupt");
    expect_refused("bad_stored_size.npz", "x.npy");
    expect_refused("bad_csize.npz", "not a readable zip archive");
    expect_refused("missing.npz", "cannot open");
    lm_npz *z = lm_npz_load(ctx, dir);
    CHECK(z == NULL);
    CHECK_CONTAINS(lm_ctx_error(ctx), "not a regular file");
    CHECK(lm_npz_load(ctx, NULL) == NULL);
    CHECK(lm_npz_load_mem(ctx, "", 0, NULL) == NULL);
    CHECK_CONTAINS(lm_ctx_error(ctx), "<memory>: not a readable zip archive: 0 bytes");
    /* NULL handles are harmless. */
    lm_npz_free(NULL);
    CHECK(lm_npz_count(NULL) == 0 && lm_npz_get(NULL, "x") == NULL);
}

/* More members than allowed, built in memory with libzip. */
static void test_too_many_members(void) {
    zip_error_t ze;
    zip_error_init(&ze);
    zip_source_t *src = zip_source_buffer_create(NULL, 0, 0, &ze);
    zip_source_keep(src);
    zip_t *za = zip_open_from_source(src, ZIP_TRUNCATE, &ze);
    CHECK(za != NULL);
    if (!za) return;
    for (int i = 0; i <= LM_NPZ_MAX_MEMBERS; i++) {
        char name[32];
        snprintf(name, sizeof name, "a%d.npy", i);
        zip_source_t *s = zip_source_buffer(za, "", 0, 0);
        if (zip_file_add(za, name, s, 0) < 0) zip_source_free(s);
    }
    CHECK(zip_close(za) == 0);
    zip_stat_t sb;
    zip_source_stat(src, &sb);
    unsigned char *buf = malloc(sb.size);
    zip_source_open(src);
    CHECK(zip_source_read(src, buf, sb.size) == (zip_int64_t)sb.size);
    zip_source_close(src);
    zip_source_free(src);
    zip_error_fini(&ze);
    lm_npz *z = lm_npz_load_mem(ctx, buf, sb.size, "many.npz");
    CHECK(z == NULL);
    CHECK_CONTAINS(lm_ctx_error(ctx), "many.npz: 10001 members, more than the 10000 allowed");
    free(buf);
}

static unsigned char *read_all(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc(n > 0 ? (size_t)n : 1);
    *len = b ? fread(b, 1, (size_t)n, f) : 0;
    fclose(f);
    return b;
}

/* Every prefix and every single-byte change of real archives: each load must
 * either succeed or fail with a message, never crash or read out of bounds. */
static void test_damaged_bytes(void) {
    const char *files[] = {"plain.npz", "compressed.npz"};
    for (int f = 0; f < 2; f++) {
        size_t len = 0;
        unsigned char *b = read_all(data_path(files[f]), &len);
        CHECK(b && len > 100);
        if (!b) continue;
        int failed_prefixes = 0, bad_msgs = 0;
        for (size_t n = 0; n < len; n++) {
            lm_ctx_clear_error(ctx);
            lm_npz *z = lm_npz_load_mem(ctx, b, n, "cut");
            if (!z) failed_prefixes++;
            if (!z && !*lm_ctx_error(ctx)) bad_msgs++;
            lm_npz_free(z);
        }
        CHECK(failed_prefixes == (int)len); /* a prefix lacks the end of the central directory */
        for (size_t i = 0; i < len; i++) {
            unsigned char *c = malloc(len);
            memcpy(c, b, len);
            c[i] ^= (unsigned char)(0x5a + i);
            lm_ctx_clear_error(ctx);
            lm_npz *z = lm_npz_load_mem(ctx, c, len, "flip");
            if (!z && !*lm_ctx_error(ctx)) bad_msgs++;
            lm_npz_free(z);
            free(c);
        }
        CHECK(bad_msgs == 0);
        free(b);
    }
}

static void test_save_errors(void) {
    lm_tensor *a = lm_tensor_new(ctx, LM_F32, LM_SHAPE(2));
    const lm_tensor *arr[] = {a, a};
    const char *bad[] = {"d/x", "", "..", "a\\b", "tab\there"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        CHECK_STATUS(lm_npz_save(ctx, tmp_path("bad.npz"), 1, &bad[i], arr, false), LM_ERR_ARG);
        CHECK_CONTAINS(lm_ctx_error(ctx), "is refused");
    }
    const char *dup[] = {"x", "x"};
    CHECK_STATUS(lm_npz_save(ctx, tmp_path("bad.npz"), 2, dup, arr, false), LM_ERR_ARG);
    CHECK_CONTAINS(lm_ctx_error(ctx), "\"x\" appears twice");
    CHECK(access(tmp_path("bad.npz"), F_OK) != 0);
    /* A failed save leaves the existing file as it was. */
    const char *ok[] = {"x"};
    CHECK_STATUS(lm_npz_save(ctx, tmp_path("keep.npz"), 1, ok, arr, false), LM_OK);
    CHECK_STATUS(lm_npz_save(ctx, tmp_path("keep.npz"), 2, dup, arr, false), LM_ERR_ARG);
    lm_npz *z = lm_npz_load(ctx, tmp_path("keep.npz"));
    CHECK(z && lm_npz_count(z) == 1);
    lm_npz_free(z);
    CHECK_STATUS(lm_npz_save(ctx, "/nonexistent-dir/x.npz", 1, ok, arr, false), LM_ERR_IO);
    CHECK_CONTAINS(lm_ctx_error(ctx), "/nonexistent-dir/x.npz");
    CHECK_STATUS(lm_npz_save(ctx, NULL, 1, ok, arr, false), LM_ERR_ARG);
    CHECK_STATUS(lm_npz_save(ctx, tmp_path("n.npz"), -1, ok, arr, false), LM_ERR_ARG);
    /* The temporary files are gone. */
    CHECK(rmdir(tmpdir) != 0);
    lm_tensor_free(a);
}

static void cleanup(void) {
    const char *files[] = {"rt.npz", "rt_c.npz", "none.npz", "keep.npz"};
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) unlink(tmp_path(files[i]));
    CHECK_MSG(rmdir(tmpdir) == 0, "%s holds files left behind", tmpdir);
}

int main(void) {
    const char *d = getenv("LAMINA_TEST_DATA");
    snprintf(dir, sizeof dir, "%s", d && *d ? d : "tests/data");
    ctx = lm_ctx_new();
    if (!ctx || !mkdtemp(tmpdir)) return 1;
    RUN(test_numpy_files);
    RUN(test_round_trip);
    RUN(test_bad_archives);
    RUN(test_too_many_members);
    RUN(test_damaged_bytes);
    RUN(test_save_errors);
    cleanup();
    lm_ctx_free(ctx);
    return lmt_summary("test_npz");
}
