/* Shared by the fuzz targets (fuzz/fuzz_*.c) and by the replay test
 * (tests/test_fuzz_regressions.c), which includes every target with
 * LM_FUZZ_REPLAY defined so that each input runs through the very same code.
 *
 * Each target defines `static int lm_fuzz_<name>(const uint8_t *, size_t)`
 * and ends with LM_FUZZ_MAIN(lm_fuzz_<name>), which becomes libFuzzer's
 * entry point in a fuzz build and nothing in the replay test. */
#ifndef LM_FUZZ_UTIL_H
#define LM_FUZZ_UTIL_H

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <lamina/lamina.h>
#include <lamina/layers.h>
#include <lamina/model.h>
#include <lamina/optimizers.h>

#ifdef LM_FUZZ_REPLAY
#define LM_FUZZ_MAIN(fn)
#else
#define LM_FUZZ_MAIN(fn)                                                                           \
    int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);                                  \
    int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {                                 \
        return fn(data, size);                                                                     \
    }
#endif

/* libhdf5 1.10 leaks on some of its error paths (memory it allocated for a
 * crafted header it then refuses); those are not leaks of Lamina's. LeakSanitizer
 * reads this hook in every binary that includes this file. */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void) {
    return "leak:libhdf5_serial.so\nleak:libhdf5.so\n";
}

/* Writes the input to a private file (parsers that only read paths) and puts
 * its path in path: /dev/shm when it exists (no disk traffic at thousands of
 * runs a second), else $TMPDIR or /tmp. name keeps the suffix the parser
 * dispatches on (".keras", ".weights.h5"). Returns 0, or -1 when the file
 * cannot be written (the run is then skipped, not counted as a finding). */
static inline int lm_fuzz_write_tmp(char *path, size_t n, const char *name, const uint8_t *data,
                                    size_t size) {
    struct stat sb;
    const char *dir = "/dev/shm";
    if (stat(dir, &sb) || !S_ISDIR(sb.st_mode) || access(dir, W_OK)) {
        dir = getenv("TMPDIR");
        if (!dir || !*dir) dir = "/tmp";
    }
    int k = snprintf(path, n, "%s/lamina-fuzz-%ld-%s", dir, (long)getpid(), name);
    if (k < 0 || (size_t)k >= n) return -1;
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0) return -1;
    size_t done = 0;
    while (done < size) {
        ssize_t w = write(fd, data + done, size - done);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) break;
        done += (size_t)w;
    }
    if (close(fd) || done != size) {
        unlink(path);
        return -1;
    }
    return 0;
}

/* The input as a NUL-terminated string (for text parsers), or NULL. */
static inline char *lm_fuzz_strndup(const uint8_t *data, size_t size) {
    char *s = malloc(size + 1);
    if (!s) return NULL;
    if (size) memcpy(s, data, size);
    s[size] = 0;
    return s;
}

/* Properties checked on every input: a violation stops the run with a trap,
 * which libFuzzer (and the replay test) report as a crash. */
#define LM_FUZZ_CHECK(cond)                                                                        \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz check failed: %s (%s:%d)\n", #cond, __FILE__, __LINE__);         \
            __builtin_trap();                                                                      \
        }                                                                                          \
    } while (0)

/* A refusal must come with a message. */
static inline void lm_fuzz_check_message(const char *msg) {
    LM_FUZZ_CHECK(msg != NULL && msg[0] != 0);
}

/* Same dtype, shape and bytes. */
static inline int lm_fuzz_same_tensor(const lm_tensor *a, const lm_tensor *b) {
    if (lm_tensor_dtype(a) != lm_tensor_dtype(b) || lm_tensor_ndim(a) != lm_tensor_ndim(b))
        return 0;
    for (int i = 0; i < lm_tensor_ndim(a); i++)
        if (lm_tensor_dim(a, i) != lm_tensor_dim(b, i)) return 0;
    if (!lm_tensor_is_contiguous(a) || !lm_tensor_is_contiguous(b)) return 0;
    size_t n = (size_t)lm_tensor_numel(a) * lm_dtype_size(lm_tensor_dtype(a));
    return n == 0 || !memcmp(lm_tensor_cdata(a), lm_tensor_cdata(b), n);
}

/* The model the weight-file targets load into: the "mlp" of
 * tests/keras/interop_weights.py (tests/data/keras/weights/mlp.*.h5), so that
 * the seeds get past the layout checks into the datasets. NULL on failure. */
static inline lm_model *lm_fuzz_mlp(void) {
    lm_model *m = lm_sequential(NULL);
    if (!m) return NULL;
    lm_ctx_set_threads(lm_model_ctx(m), 1);
    lm_add(m, lm_input(LM_SHAPE(4)));
    lm_add(m, lm_dense(5, .activation = LM_RELU));
    lm_add(m, lm_dense(3, .name = "out"));
    lm_compile(m, .optimizer = lm_adam(.learning_rate = 0.01), .loss = LM_MSE);
    if (lm_model_status(m) != LM_OK) {
        lm_model_free(m);
        return NULL;
    }
    return m;
}

#endif
