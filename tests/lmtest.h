/* A minimal test harness: CHECK macros count failures, RUN runs a test
 * function, and lmt_summary prints one line and gives main's exit code. */
#ifndef LMTEST_H
#define LMTEST_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int lmt_failures, lmt_checks, lmt_tests;

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        lmt_checks++;                                                                              \
        if (!(cond)) {                                                                             \
            lmt_failures++;                                                                        \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);               \
        }                                                                                          \
    } while (0)

#define CHECK_MSG(cond, ...)                                                                       \
    do {                                                                                           \
        lmt_checks++;                                                                              \
        if (!(cond)) {                                                                             \
            lmt_failures++;                                                                        \
            fprintf(stderr, "%s:%d: CHECK failed: %s: ", __FILE__, __LINE__, #cond);               \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fputc('\n', stderr);                                                                   \
        }                                                                                          \
    } while (0)

/* |a - b| <= tol * max(1, |b|) */
#define CHECK_NEAR(a, b, tol)                                                                      \
    do {                                                                                           \
        double lmt_a_ = (double)(a), lmt_b_ = (double)(b);                                         \
        double lmt_s_ = fabs(lmt_b_) > 1 ? fabs(lmt_b_) : 1;                                       \
        lmt_checks++;                                                                              \
        if (!(fabs(lmt_a_ - lmt_b_) <= (tol)*lmt_s_)) {                                            \
            lmt_failures++;                                                                        \
            fprintf(stderr, "%s:%d: CHECK_NEAR failed: %s = %.9g, %s = %.9g\n", __FILE__,          \
                    __LINE__, #a, lmt_a_, #b, lmt_b_);                                             \
        }                                                                                          \
    } while (0)

#define CHECK_STATUS(expr, want)                                                                   \
    do {                                                                                           \
        int lmt_s_ = (int)(expr);                                                                  \
        lmt_checks++;                                                                              \
        if (lmt_s_ != (int)(want)) {                                                               \
            lmt_failures++;                                                                        \
            fprintf(stderr, "%s:%d: %s returned %d, wanted %d\n", __FILE__, __LINE__, #expr,       \
                    lmt_s_, (int)(want));                                                          \
        }                                                                                          \
    } while (0)

/* The message contains the substring. */
#define CHECK_CONTAINS(msg, sub)                                                                   \
    do {                                                                                           \
        const char *lmt_m_ = (msg);                                                                \
        lmt_checks++;                                                                              \
        if (!lmt_m_ || !strstr(lmt_m_, (sub))) {                                                   \
            lmt_failures++;                                                                        \
            fprintf(stderr, "%s:%d: message \"%s\" lacks \"%s\"\n", __FILE__, __LINE__,            \
                    lmt_m_ ? lmt_m_ : "(null)", (sub));                                            \
        }                                                                                          \
    } while (0)

#define RUN(fn)                                                                                    \
    do {                                                                                           \
        int lmt_before_ = lmt_failures;                                                            \
        lmt_tests++;                                                                               \
        fn();                                                                                      \
        fprintf(stderr, "%s %s\n", lmt_failures == lmt_before_ ? "ok  " : "FAIL", #fn);            \
    } while (0)

static inline int lmt_summary(const char *suite) {
    printf("%s: %d tests, %d checks, %d failures\n", suite, lmt_tests, lmt_checks, lmt_failures);
    return lmt_failures ? 1 : 0;
}

/* Directory of the data sets (LAMINA_DATA), or NULL when unset. */
static inline const char *lmt_data_dir(void) {
    const char *d = getenv("LAMINA_DATA");
    return d && *d ? d : NULL;
}

#endif
