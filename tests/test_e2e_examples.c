/* End-to-end test of the Keras-API examples: runs each program (built into
 * ../examples beside this test, or $LAMINA_EXAMPLES_DIR) with a fixed seed
 * and checks the metric on its last line:
 *
 *   mnist_cnn    test accuracy >= 0.985 after 3 epochs
 *   mnist_mlp    test accuracy >= Keras's for the same model - 0.005
 *                ($LAMINA_TEST_DATA/keras/mnist_mlp/keras_accuracy.txt,
 *                written by tests/keras/mnist_mlp_keras.py)
 *   lstm_series  test rmse below the naive last-value forecast's
 *   functional   test accuracy >= 0.97
 *
 *   test_e2e_examples [name...]   (default: all four)
 *
 * OpenMP threads are told to sleep rather than spin while waiting
 * (OMP_WAIT_POLICY=passive unless set): spinning threads starve each other
 * when ctest runs several programs at once on few cores. */
#include "lmtest.h"
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define TAIL 8192

static char examples_dir[1024];

/* Finds ../examples relative to this executable unless LAMINA_EXAMPLES_DIR is set. */
static bool find_examples(void) {
    const char *env = getenv("LAMINA_EXAMPLES_DIR");
    if (env && *env) {
        snprintf(examples_dir, sizeof examples_dir, "%s", env);
        return true;
    }
    char self[900];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0) return false;
    self[n] = 0;
    char *slash = strrchr(self, '/');
    if (!slash) return false;
    *slash = 0;
    snprintf(examples_dir, sizeof examples_dir, "%s/../examples", self);
    return true;
}

/* Runs the example; keeps the last TAIL bytes of its output (progress bars
 * redraw with '\r', so those count as line ends). Returns the exit status. */
static int run(const char *name, const char *args, char *tail, double *seconds) {
    char cmd[1400];
    snprintf(cmd, sizeof cmd, "'%s/%s' %s 2>&1", examples_dir, name, args);
    fprintf(stderr, "running %s\n", cmd);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    FILE *p = popen(cmd, "r");
    if (!p) return -1;
    size_t n = 0;
    char buf[TAIL / 2];
    size_t r;
    while ((r = fread(buf, 1, sizeof buf, p)) > 0) {
        if (n + r > TAIL - 1) { /* drop the oldest bytes (r < TAIL) */
            size_t drop = n + r - (TAIL - 1);
            memmove(tail, tail + drop, n - drop);
            n -= drop;
        }
        memcpy(tail + n, buf, r);
        n += r;
    }
    tail[n] = 0;
    for (size_t i = 0; i < n; i++)
        if (tail[i] == '\r') tail[i] = '\n';
    int status = pclose(p);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    *seconds = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* The number after the last "key" in text, which must be on the last line
 * when last_line is set; NaN when absent. */
static double value_of(const char *text, const char *key, bool last_line) {
    const char *at = NULL;
    for (const char *s = strstr(text, key); s; s = strstr(s + 1, key)) at = s;
    if (!at) return NAN;
    if (last_line) {
        const char *nl = strchr(at, '\n');
        if (nl && nl[strspn(nl, "\n")] != 0) return NAN; /* something follows */
    }
    return strtod(at + strlen(key), NULL);
}

/* Keras's mean accuracy for mnist_mlp's model, from the file the Keras script wrote. */
static double keras_mlp_accuracy(void) {
    const char *dir = getenv("LAMINA_TEST_DATA");
    char path[1024];
    snprintf(path, sizeof path, "%s/keras/mnist_mlp/keras_accuracy.txt", dir ? dir : "tests/data");
    FILE *f = fopen(path, "r");
    if (!f) return NAN;
    char line[256];
    double acc = NAN;
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, "mean ", 5)) acc = strtod(line + 5, NULL);
    fclose(f);
    return acc;
}

typedef struct example {
    const char *name, *args;
} example;

static const example all[] = {
    {"mnist_cnn", "--epochs 3 --seed 1"},
    {"mnist_mlp", "--seed 1"},
    {"lstm_series", "--seed 1"},
    {"functional", "--seed 1"},
};

static void check_example(const example *e) {
    static char tail[TAIL];
    double secs = 0;
    int rc = run(e->name, e->args, tail, &secs);
    CHECK_MSG(rc == 0, "%s exited with %d", e->name, rc);
    bool ok = true;
    if (!strcmp(e->name, "lstm_series")) {
        double rmse = value_of(tail, "test rmse:", true);
        double naive = value_of(tail, "naive rmse:", false);
        fprintf(stderr, "%s: test rmse %.1f, naive forecast %.1f (%.0f s)\n", e->name, rmse, naive,
                secs);
        CHECK(rmse == rmse && naive == naive);
        if (!(rmse < naive)) ok = false;
    } else {
        double want = !strcmp(e->name, "mnist_cnn")    ? 0.985
                      : !strcmp(e->name, "functional") ? 0.97
                                                       : keras_mlp_accuracy() - 0.005;
        double acc = value_of(tail, "test accuracy:", true);
        fprintf(stderr, "%s: test accuracy %.4f, needed %.4f (%.0f s)\n", e->name, acc, want, secs);
        CHECK_MSG(want == want, "no Keras accuracy recorded for %s", e->name);
        if (!(acc >= want)) ok = false;
    }
    CHECK_MSG(ok, "%s missed its target", e->name);
    if (!strcmp(e->name, "mnist_cnn")) CHECK(strstr(tail, "test loss:") != NULL);
    if (rc != 0 || !ok) fprintf(stderr, "---- last output of %s ----\n%s\n----\n", e->name, tail);
}

int main(int argc, char **argv) {
    if (!getenv("LAMINA_DATA")) {
        printf("test_e2e_examples: LAMINA_DATA unset, skipped\n");
        return 0;
    }
    if (!find_examples()) {
        fprintf(stderr, "cannot locate the examples; set LAMINA_EXAMPLES_DIR\n");
        return 1;
    }
    setenv("OMP_WAIT_POLICY", "passive", 0);
    int n = (int)(sizeof all / sizeof all[0]);
    for (int i = 0; i < n; i++) {
        bool wanted = argc < 2;
        for (int a = 1; a < argc; a++) wanted |= !strcmp(argv[a], all[i].name);
        if (!wanted) continue;
        lmt_tests++;
        int before = lmt_failures;
        check_example(&all[i]);
        fprintf(stderr, "%s %s\n", lmt_failures == before ? "ok  " : "FAIL", all[i].name);
    }
    return lmt_summary("test_e2e_examples");
}
