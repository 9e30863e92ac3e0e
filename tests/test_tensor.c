/* Tensors and contexts: creation, views, copies, random fills, and every
 * error path of the tensor API. */
#include <lamina/lamina.h>
#include <stdint.h>
#include "lmtest.h"

static lm_ctx *ctx;

static void create_and_query(void) {
    lm_tensor *t = lm_tensor_new(ctx, LM_F32, LM_SHAPE(2, 3, 4));
    CHECK(t != NULL);
    CHECK(lm_tensor_ndim(t) == 3);
    CHECK(lm_tensor_dim(t, 0) == 2 && lm_tensor_dim(t, -1) == 4);
    CHECK(lm_tensor_numel(t) == 24);
    CHECK(lm_tensor_stride(t, 0) == 12 && lm_tensor_stride(t, 2) == 1);
    CHECK(lm_tensor_is_contiguous(t));
    CHECK(lm_tensor_dtype(t) == LM_F32);
    CHECK(lm_tensor_get(t, 5) == 0.0); /* zero-filled */
    lm_tensor_free(t);

    lm_tensor *e = lm_tensor_new(ctx, LM_F32, LM_SHAPE(0, 5));
    CHECK(e != NULL && lm_tensor_numel(e) == 0);
    CHECK_STATUS(lm_tensor_fill(e, 1.0), LM_OK);
    lm_tensor_free(e);

    lm_tensor *s = lm_tensor_new(ctx, LM_I64, LM_SCALAR);
    CHECK(s != NULL && lm_tensor_numel(s) == 1 && lm_tensor_ndim(s) == 0);
    lm_tensor_free(s);

    lm_tensor *big = lm_tensor_new(ctx, LM_U8, LM_SHAPE(1, 1, 1, 1, 1, 1, 1, 2));
    CHECK(big != NULL && lm_tensor_ndim(big) == 8);
    lm_tensor_free(big);
}

static void bad_creation(void) {
    CHECK(lm_tensor_new(NULL, LM_F32, LM_SHAPE(2)) == NULL);
    CHECK(lm_tensor_new(ctx, LM_F32, LM_SHAPE(2, -3)) == NULL);
    CHECK_CONTAINS(lm_ctx_error(ctx), "(2, -3)");
    lm_shape nine = {9, {1, 1, 1, 1, 1, 1, 1, 1}};
    CHECK(lm_tensor_new(ctx, LM_F32, nine) == NULL);
    CHECK_CONTAINS(lm_ctx_error(ctx), "9 dimensions");
    CHECK(lm_tensor_new(ctx, (lm_dtype)42, LM_SHAPE(2)) == NULL);
    CHECK_CONTAINS(lm_ctx_error(ctx), "dtype");
    /* A shape whose byte size overflows is refused before any allocation. */
    CHECK(lm_tensor_new(ctx, LM_F32, LM_SHAPE(INT64_C(1) << 40, INT64_C(1) << 40)) == NULL);
    CHECK_CONTAINS(lm_ctx_error(ctx), "too large");
    /* A huge but representable shape fails as out of memory, not a crash. */
    CHECK(lm_tensor_new(ctx, LM_F32, LM_SHAPE(INT64_C(1) << 45)) == NULL);
    CHECK(lm_tensor_from_data(ctx, LM_F32, LM_SHAPE(2), NULL, 8) == NULL);
    float v[3] = {1, 2, 3};
    CHECK(lm_tensor_from_data(ctx, LM_F32, LM_SHAPE(2), v, sizeof v) == NULL);
    CHECK_CONTAINS(lm_ctx_error(ctx), "12 bytes given");
    CHECK(lm_tensor_wrap(ctx, LM_F32, LM_SHAPE(2), NULL) == NULL);
}

static void null_handles(void) {
    CHECK(lm_tensor_ndim(NULL) == -1);
    CHECK(lm_tensor_numel(NULL) == -1);
    CHECK(lm_tensor_data(NULL) == NULL);
    CHECK(lm_tensor_f32(NULL) == NULL);
    CHECK_STATUS(lm_tensor_fill(NULL, 1), LM_ERR_ARG);
    CHECK_STATUS(lm_tensor_copy_from(NULL, NULL, 0), LM_ERR_ARG);
    CHECK_STATUS(lm_tensor_copy_to(NULL, NULL, 0), LM_ERR_ARG);
    CHECK_STATUS(lm_tensor_assign(NULL, NULL), LM_ERR_ARG);
    CHECK_STATUS(lm_tensor_set(NULL, 0, 1), LM_ERR_ARG);
    CHECK(isnan(lm_tensor_get(NULL, 0)));
    CHECK(lm_tensor_reshape(NULL, LM_SHAPE(1)) == NULL);
    CHECK(lm_tensor_transpose(NULL, NULL) == NULL);
    CHECK(lm_tensor_slice(NULL, 0, 0, 1, 1) == NULL);
    CHECK(lm_tensor_clone(NULL) == NULL);
    CHECK(lm_tensor_cast(NULL, LM_F32) == NULL);
    CHECK_STATUS(lm_tensor_random_uniform(NULL, 0, 1), LM_ERR_ARG);
    CHECK_STATUS(lm_ctx_set_threads(NULL, 1), LM_ERR_ARG);
    CHECK_STATUS(lm_ctx_seed(NULL, 1), LM_ERR_ARG);
    lm_tensor_free(NULL);
    lm_ctx_free(NULL);
}

static void copies(void) {
    float src[6] = {1, 2, 3, 4, 5, 6}, dst[6] = {0};
    lm_tensor *t = lm_tensor_from_data(ctx, LM_F32, LM_SHAPE(2, 3), src, sizeof src);
    CHECK(lm_tensor_get(t, 4) == 5);
    CHECK_STATUS(lm_tensor_copy_to(t, dst, sizeof dst), LM_OK);
    CHECK(dst[5] == 6);
    CHECK_STATUS(lm_tensor_copy_to(t, dst, 4), LM_ERR_ARG);
    CHECK_STATUS(lm_tensor_set(t, 6, 1), LM_ERR_ARG);
    CHECK_CONTAINS(lm_ctx_error(ctx), "out of range");
    CHECK_STATUS(lm_tensor_set(t, 0, 9), LM_OK);
    CHECK(src[0] == 1); /* from_data copies */

    lm_tensor *i = lm_tensor_cast(t, LM_I32);
    CHECK(lm_tensor_dtype(i) == LM_I32 && lm_tensor_get(i, 0) == 9);
    lm_tensor *c = lm_tensor_clone(t);
    lm_tensor_fill(t, 7);
    CHECK(lm_tensor_get(c, 1) == 2 && lm_tensor_get(t, 1) == 7);
    lm_tensor *w = lm_tensor_new(ctx, LM_F32, LM_SHAPE(3, 2));
    CHECK_STATUS(lm_tensor_assign(w, t), LM_ERR_SHAPE);
    CHECK_CONTAINS(lm_ctx_error(ctx), "(3, 2)");
    lm_tensor_free(w);
    lm_tensor_free(c);
    lm_tensor_free(i);
    lm_tensor_free(t);

    /* Wrapping caller memory shares it. */
    lm_tensor *wr = lm_tensor_wrap(ctx, LM_F32, LM_SHAPE(6), src);
    lm_tensor_set(wr, 2, 42);
    CHECK(src[2] == 42);
    lm_tensor_free(wr);
}

static void views(void) {
    float v[24];
    for (int i = 0; i < 24; i++) v[i] = (float)i;
    lm_tensor *t = lm_tensor_from_data(ctx, LM_F32, LM_SHAPE(2, 3, 4), v, sizeof v);

    lm_tensor *r = lm_tensor_reshape(t, LM_SHAPE(6, -1));
    CHECK(r && lm_tensor_dim(r, 1) == 4);
    CHECK(lm_tensor_data(r) == lm_tensor_data(t)); /* no copy */
    CHECK(lm_tensor_reshape(t, LM_SHAPE(5, -1)) == NULL);
    CHECK_CONTAINS(lm_ctx_error(ctx), "cannot reshape (2, 3, 4) into (5, None)");
    CHECK(lm_tensor_reshape(t, LM_SHAPE(-1, -1)) == NULL);

    int perm[3] = {2, 0, 1};
    lm_tensor *tr = lm_tensor_transpose(t, perm);
    CHECK(tr && lm_tensor_dim(tr, 0) == 4 && lm_tensor_dim(tr, 1) == 2);
    CHECK(!lm_tensor_is_contiguous(tr));
    CHECK(lm_tensor_get(tr, 1) == 4 && lm_tensor_get(tr, 3) == 12); /* tr[a][b][c] = t[b][c][a] */
    int bad[3] = {0, 0, 1};
    CHECK(lm_tensor_transpose(t, bad) == NULL);

    /* Reshaping a non-contiguous view copies. */
    lm_tensor *flat = lm_tensor_reshape(tr, LM_SHAPE(24));
    CHECK(flat && lm_tensor_get(flat, 1) == 4 && lm_tensor_get(flat, 3) == 12);
    CHECK(lm_tensor_data(flat) != lm_tensor_data(t));

    lm_tensor *sl = lm_tensor_slice(t, 2, 1, 4, 2); /* last axis, elements 1 and 3 */
    CHECK(sl && lm_tensor_dim(sl, 2) == 2);
    CHECK(lm_tensor_get(sl, 0) == 1 && lm_tensor_get(sl, 1) == 3 && lm_tensor_get(sl, 2) == 5);
    float out[12];
    CHECK_STATUS(lm_tensor_copy_to(sl, out, sizeof out), LM_OK);
    CHECK(out[11] == 23);
    CHECK(lm_tensor_slice(t, 3, 0, 1, 1) == NULL);
    CHECK(lm_tensor_slice(t, 0, 0, 3, 1) == NULL);
    CHECK_CONTAINS(lm_ctx_error(ctx), "axis 0 of size 2");
    CHECK(lm_tensor_slice(t, 0, 0, 1, 0) == NULL);

    /* Views keep storage alive after the original is freed. */
    lm_tensor_free(t);
    CHECK(lm_tensor_get(sl, 3) == 7);
    lm_tensor *cont = lm_tensor_contiguous(sl);
    CHECK(lm_tensor_is_contiguous(cont) && lm_tensor_get(cont, 3) == 7);
    lm_tensor_free(cont);
    lm_tensor_free(sl);
    lm_tensor_free(flat);
    lm_tensor_free(tr);
    lm_tensor_free(r);
}

static double mean_of(lm_tensor *t, double *var) {
    double s = 0, s2 = 0;
    int64_t n = lm_tensor_numel(t);
    for (int64_t i = 0; i < n; i++) {
        double x = lm_tensor_get(t, i);
        s += x;
        s2 += x * x;
    }
    *var = s2 / n - (s / n) * (s / n);
    return s / n;
}

static void random_fills(void) {
    lm_tensor *a = lm_tensor_new(ctx, LM_F32, LM_SHAPE(100000));
    lm_tensor *b = lm_tensor_new(ctx, LM_F32, LM_SHAPE(100000));
    double var;
    lm_ctx_seed(ctx, 7);
    lm_tensor_random_uniform(a, -2, 2);
    CHECK_NEAR(mean_of(a, &var), 0.0, 0.02);
    CHECK_NEAR(var, 16.0 / 12.0, 0.02);
    lm_ctx_seed(ctx, 7);
    lm_tensor_random_uniform(b, -2, 2);
    bool same = true;
    for (int64_t i = 0; i < 100000; i++) same = same && lm_tensor_get(a, i) == lm_tensor_get(b, i);
    CHECK(same); /* the same seed gives the same numbers */

    lm_tensor_random_normal(a, 1.0, 0.5);
    CHECK_NEAR(mean_of(a, &var), 1.0, 0.01);
    CHECK_NEAR(var, 0.25, 0.01);

    lm_tensor_random_truncated_normal(a, 0.0, 1.0);
    double mx = 0;
    for (int64_t i = 0; i < 100000; i++) mx = fmax(mx, fabs(lm_tensor_get(a, i)));
    CHECK(mx <= 2.0);
    /* A standard normal truncated at 2 sigma has variance 0.774. */
    mean_of(a, &var);
    CHECK_NEAR(var, 0.774, 0.01);

    lm_tensor *it = lm_tensor_new(ctx, LM_I32, LM_SHAPE(3));
    CHECK_STATUS(lm_tensor_random_normal(it, 0, 1), LM_ERR_DTYPE);
    CHECK_STATUS(lm_tensor_random_uniform(a, 1, 0), LM_ERR_ARG);
    CHECK_STATUS(lm_tensor_random_normal(a, 0, -1), LM_ERR_ARG);
    lm_tensor_free(it);
    lm_tensor_free(a);
    lm_tensor_free(b);
}

static void context(void) {
    lm_ctx *c = lm_ctx_new();
    CHECK(lm_ctx_threads(c) >= 1);
    CHECK_STATUS(lm_ctx_set_threads(c, 0), LM_ERR_ARG);
    CHECK_CONTAINS(lm_ctx_error(c), "thread count 0");
    CHECK_STATUS(lm_ctx_set_threads(c, 3), LM_OK);
    CHECK(lm_ctx_threads(c) == 3);
    lm_ctx_clear_error(c);
    CHECK(lm_ctx_error(c)[0] == '\0');
    CHECK_STATUS(lm_ctx_set_isa(c, "generic"), LM_OK);
    CHECK(!strcmp(lm_ctx_isa(c), "generic"));
    CHECK_STATUS(lm_ctx_set_isa(c, "sse9"), LM_ERR_ARG);
    lm_ctx_free(c);

    setenv("LAMINA_NUM_THREADS", "5", 1);
    c = lm_ctx_new();
    CHECK(lm_ctx_threads(c) == 5);
    lm_ctx_free(c);
    setenv("LAMINA_NUM_THREADS", "nonsense", 1);
    c = lm_ctx_new();
    CHECK(lm_ctx_threads(c) >= 1);
    lm_ctx_free(c);
    unsetenv("LAMINA_NUM_THREADS");
}

static void shapes_and_names(void) {
    char b[96];
    CHECK(!strcmp(lm_shape_str(LM_SHAPE(-1, 28, 28), b, sizeof b), "(None, 28, 28)"));
    CHECK(!strcmp(lm_shape_str(LM_SHAPE(5), b, sizeof b), "(5,)"));
    CHECK(!strcmp(lm_shape_str(LM_SCALAR, b, sizeof b), "()"));
    CHECK(lm_shape_numel(LM_SHAPE(2, 3)) == 6);
    CHECK(lm_shape_numel(LM_SHAPE(-1, 3)) == -1);
    CHECK(!strcmp(lm_dtype_name(LM_I64), "int64"));
    CHECK(lm_dtype_size(LM_U8) == 1 && lm_dtype_size((lm_dtype)99) == 0);
    CHECK(!strcmp(lm_status_str(LM_ERR_SHAPE), "shape mismatch"));
}

int main(void) {
    ctx = lm_ctx_new();
    RUN(create_and_query);
    RUN(bad_creation);
    RUN(null_handles);
    RUN(copies);
    RUN(views);
    RUN(random_fills);
    RUN(context);
    RUN(shapes_and_names);
    lm_ctx_free(ctx);
    return lmt_summary("tensor");
}
