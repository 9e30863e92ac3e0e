/* Training allocates nothing per step: the number of heap allocations made
 * by a fit (history, shuffle order, batch views) does not grow with the
 * number of steps, on 1 thread and on 2, for a Dense model, a CNN and an
 * LSTM. malloc, free and friends are wrapped here (the executable's definitions
 * take precedence over libc's for the library and libgomp too) and counted.
 * Under AddressSanitizer, which owns malloc, the test is skipped. */
#define _GNU_SOURCE
#include <lamina/lamina.h>
#include <stdatomic.h>
#include <stdlib.h>
#include "lmtest.h"

#if defined(__SANITIZE_ADDRESS__)
#define LM_NO_WRAP 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define LM_NO_WRAP 1
#endif
#endif

#ifndef LM_NO_WRAP
void *__libc_malloc(size_t n);
void *__libc_calloc(size_t n, size_t s);
void *__libc_realloc(void *p, size_t n);
void *__libc_memalign(size_t a, size_t n);
void __libc_free(void *p);

static atomic_long allocs;

void *malloc(size_t n) {
    atomic_fetch_add(&allocs, 1);
    return __libc_malloc(n);
}
void *calloc(size_t n, size_t s) {
    atomic_fetch_add(&allocs, 1);
    return __libc_calloc(n, s);
}
void *realloc(void *p, size_t n) {
    atomic_fetch_add(&allocs, 1);
    return __libc_realloc(p, n);
}
void *aligned_alloc(size_t a, size_t n) {
    atomic_fetch_add(&allocs, 1);
    return __libc_memalign(a, n);
}
void *memalign(size_t a, size_t n) {
    atomic_fetch_add(&allocs, 1);
    return __libc_memalign(a, n);
}
/* Frees are counted too: they catch an allocation made through a path not
 * wrapped here. */
void free(void *p) {
    if (p) atomic_fetch_add(&allocs, 1);
    __libc_free(p);
}
int posix_memalign(void **p, size_t a, size_t n) {
    atomic_fetch_add(&allocs, 1);
    *p = __libc_memalign(a, n);
    return *p ? 0 : 12; /* ENOMEM */
}

enum { DENSE, CNN, LSTM };

static lm_model *build(int kind, int threads) {
    lm_model *m = lm_sequential(NULL);
    lm_ctx_set_threads(lm_model_ctx(m), threads);
    lm_ctx_seed(lm_model_ctx(m), 3);
    if (kind == DENSE) {
        lm_add(m, lm_dense(64, .activation = LM_RELU, .input_shape = LM_SHAPE(100)));
        lm_add(m, lm_dense(10, .activation = LM_SOFTMAX));
    } else if (kind == CNN) {
        lm_add(m, lm_input(LM_SHAPE(12, 12, 1)));
        lm_add(m, lm_conv2d(8, LM_SIZE(3, 3), .activation = LM_RELU));
        lm_add(m, lm_max_pooling2d(LM_SIZE(2, 2)));
        lm_add(m, lm_flatten());
        lm_add(m, lm_dense(10, .activation = LM_SOFTMAX));
    } else {
        lm_add(m, lm_lstm(8, .return_sequences = true, .input_shape = LM_SHAPE(5, 1)));
        lm_add(m, lm_lstm(8));
        lm_add(m, lm_dense(10, .activation = LM_SOFTMAX));
    }
    CHECK_STATUS(lm_compile(m, .optimizer = lm_adam(), .loss = LM_SPARSE_CATEGORICAL_CROSSENTROPY,
                            .metrics = LM_METRICS(LM_ACCURACY)),
                 LM_OK);
    return m;
}

static long fit_allocs(lm_model *m, lm_tensor *x, lm_tensor *y, int64_t n) {
    lm_tensor *xv = lm_tensor_slice(x, 0, 0, n, 1), *yv = lm_tensor_slice(y, 0, 0, n, 1);
    long before = atomic_load(&allocs);
    lm_history *h = lm_fit(m, xv, yv, .batch_size = 8, .verbose = LM_SILENT);
    long used = atomic_load(&allocs) - before;
    CHECK(h != NULL);
    lm_history_free(h);
    lm_tensor_free(xv);
    lm_tensor_free(yv);
    return used;
}

static void steps_do_not_allocate(int kind, int threads) {
    lm_model *m = build(kind, threads);
    lm_ctx *ctx = lm_model_ctx(m);
    lm_shape xs = kind == DENSE ? LM_SHAPE(400, 100)
                  : kind == CNN ? LM_SHAPE(400, 12, 12, 1)
                                : LM_SHAPE(400, 5, 1);
    lm_tensor *x = lm_tensor_new(ctx, LM_F32, xs), *y = lm_tensor_new(ctx, LM_I32, LM_SHAPE(400));
    lm_tensor_random_uniform(x, 0, 1);
    int32_t *lab = lm_tensor_data(y);
    for (int i = 0; i < 400; i++) lab[i] = (i * 7) % 10;
    fit_allocs(m, x, y, 40); /* plans the sessions */
    long few = fit_allocs(m, x, y, 40), many = fit_allocs(m, x, y, 400);
    CHECK_MSG(many == few,
              "model %d, %d thread(s): a fit of 5 steps allocates or frees %ld times, of 50 %ld",
              kind, threads, few, many);
    lm_tensor_free(x);
    lm_tensor_free(y);
    lm_model_free(m);
}

static void dense(void) {
    steps_do_not_allocate(DENSE, 1);
    steps_do_not_allocate(DENSE, 2);
}
static void cnn(void) {
    steps_do_not_allocate(CNN, 1);
    steps_do_not_allocate(CNN, 2);
}
static void lstm(void) {
    steps_do_not_allocate(LSTM, 1);
    steps_do_not_allocate(LSTM, 2);
}

int main(void) {
    RUN(dense);
    RUN(cnn);
    RUN(lstm);
    return lmt_summary("test_no_alloc");
}
#else
#include <stdio.h>
int main(void) {
    printf("skipped: AddressSanitizer owns malloc\n");
    return 77;
}
#endif
