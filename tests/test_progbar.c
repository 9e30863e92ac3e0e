/* The progress bar against the bytes real keras.utils.Progbar writes for the
 * same updates and fake clock readings (tests/keras/ref_progbar.py writes
 * tests/data/keras/progbar/<case>.{events,txt}). */
#include "lmtest.h"
#include "nn/progbar.h"
#include "refs.h"

/* A clock the test sets before each update. */
typedef struct fake_clock {
    double now;
} fake_clock;

static double fake_now(void *user) {
    return ((fake_clock *)user)->now;
}

static char *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    if (s && fread(s, 1, (size_t)n, f) != (size_t)n) n = 0;
    if (s) s[n] = 0;
    fclose(f);
    *len = (size_t)n;
    return s;
}

/* Everything written to a temporary stream. */
static char *slurp(FILE *f, size_t *len) {
    fflush(f);
    long n = ftell(f);
    rewind(f);
    char *s = malloc((size_t)n + 1);
    if (s && fread(s, 1, (size_t)n, f) != (size_t)n) n = 0;
    if (s) s[n] = 0;
    *len = (size_t)n;
    return s;
}

/* First differing byte, printed with some context for a failure message. */
static void show_diff(const char *name, const char *got, size_t ng, const char *want, size_t nw) {
    size_t i = 0;
    while (i < ng && i < nw && got[i] == want[i]) i++;
    size_t from = i > 40 ? i - 40 : 0;
    fprintf(stderr, "%s: first difference at byte %zu (got %zu bytes, want %zu)\n  got:  ", name, i,
            ng, nw);
    for (size_t k = from; k < ng && k < i + 40; k++) fputc(got[k] == '\b' ? '<' : got[k], stderr);
    fprintf(stderr, "\n  want: ");
    for (size_t k = from; k < nw && k < i + 40; k++) fputc(want[k] == '\b' ? '<' : want[k], stderr);
    fputc('\n', stderr);
}

/* Replays <case>.events and compares the output with <case>.txt. */
static void replay(const char *name) {
    char path[1024];
    snprintf(path, sizeof path, "%s/keras/progbar/%s.events", ref_dir(), name);
    FILE *ev = fopen(path, "r");
    CHECK_MSG(ev != NULL, "missing %s", path);
    if (!ev) return;
    long long target = 0;
    int verbose = 0;
    fake_clock clock = {0};
    char line[2048];
    while (fgets(line, sizeof line, ev) && strncmp(line, "start ", 6)) {
        if (!strncmp(line, "target ", 7))
            target = atoll(line + 7);
        else if (!strncmp(line, "verbose ", 8))
            verbose = atoi(line + 8);
    }
    clock.now = strtod(line + 6, NULL);
    FILE *out = tmpfile();
    lm_progbar *p = lm_progbar_new(out, target, verbose);
    lm_progbar_set_clock(p, fake_now, &clock);
    lm_progbar_set_dynamic(p, true); /* the references are Keras's in-place redraws */
    while (fgets(line, sizeof line, ev)) {
        if (strncmp(line, "update ", 7)) continue;
        char *end;
        clock.now = strtod(line + 7, &end);
        long long current = strtoll(end, &end, 10);
        int finalize = (int)strtol(end, &end, 10);
        lm_logs logs;
        lm_logs_clear(&logs);
        for (char *tok = strtok(end, " \n"); tok; tok = strtok(NULL, " \n")) {
            char *eq = strchr(tok, '=');
            if (!eq) continue;
            *eq = 0;
            lm_logs_set(&logs, tok, strtod(eq + 1, NULL));
        }
        lm_progbar_update(p, current, &logs, finalize != 0);
    }
    fclose(ev);
    lm_progbar_free(p);
    size_t ng = 0, nw = 0;
    char *got = slurp(out, &ng);
    fclose(out);
    snprintf(path, sizeof path, "%s/keras/progbar/%s.txt", ref_dir(), name);
    char *want = read_file(path, &nw);
    CHECK_MSG(want != NULL, "missing %s", path);
    bool same = got && want && ng == nw && !memcmp(got, want, ng);
    CHECK_MSG(same, "%s differs from Keras", name);
    if (!same && got && want) show_diff(name, got, ng, want, nw);
    free(got);
    free(want);
}

static void test_keras_outputs(void) {
    const char *cases[] = {"fit_val",
                           "fit_val_verbose2",
                           "mnist_steps",
                           "mnist_steps_verbose2",
                           "eta_formats",
                           "fast_steps",
                           "value_formats",
                           "value_formats_verbose2",
                           "shrinking",
                           "unknown_target",
                           "unknown_target_verbose2",
                           "predict_one_step"};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) replay(cases[i]);
}

/* Non-final updates within 0.05 s of the last drawn one are not drawn. */
static void test_interval(void) {
    fake_clock clock = {0};
    FILE *out = tmpfile();
    lm_progbar *p = lm_progbar_new(out, 10, 1);
    lm_progbar_set_clock(p, fake_now, &clock);
    lm_progbar_set_dynamic(p, true); /* the references are Keras's in-place redraws */
    const double t[4] = {1.0, 1.01, 1.02, 1.03};
    for (int i = 0; i < 4; i++) {
        clock.now = t[i];
        lm_progbar_update(p, i + 1, NULL, i == 3); /* 2 and 3 are skipped; 4 is final */
    }
    lm_progbar_free(p);
    size_t n = 0;
    char *s = slurp(out, &n);
    fclose(out);
    int draws = 0;
    for (size_t i = 0; i < n; i++) draws += s[i] == '\r';
    CHECK(draws == 2);
    CHECK(strstr(s, " 2/10") == NULL && strstr(s, " 3/10") == NULL);
    CHECK(strstr(s, " 4/10") != NULL && s[n - 1] == '\n');
    free(s);
}

/* verbose 2 prints only at the end; logs keys are sorted with val_ ones last. */
static void test_verbose2_order(void) {
    fake_clock clock = {0};
    FILE *out = tmpfile();
    lm_progbar *p = lm_progbar_new(out, 2, 2);
    lm_progbar_set_clock(p, fake_now, &clock);
    lm_progbar_set_dynamic(p, true); /* the references are Keras's in-place redraws */
    lm_logs logs;
    lm_logs_clear(&logs);
    lm_logs_set(&logs, "val_loss", 0.5);
    lm_logs_set(&logs, "loss", 0.25);
    lm_logs_set(&logs, "val_accuracy", 0.75);
    lm_logs_set(&logs, "accuracy", 0.875);
    clock.now = 0.5;
    lm_progbar_update(p, 1, &logs, false);
    clock.now = 2.6;
    lm_progbar_update(p, 2, &logs, true);
    lm_progbar_free(p);
    size_t n = 0;
    char *s = slurp(out, &n);
    fclose(out);
    /* (2.6 - 0) / 2 steps: ProgbarLogger makes no per-batch updates at verbose 2 */
    CHECK_MSG(!strcmp(s, "2/2 - 3s - 1s/step - accuracy: 0.8750 - loss: 0.2500 - val_accuracy: "
                         "0.7500 - val_loss: 0.5000\n"),
              "got \"%s\"", s);
    free(s);
}

static void test_null_safe(void) {
    lm_progbar_update(NULL, 1, NULL, true);
    lm_progbar_set_clock(NULL, fake_now, NULL);
    lm_progbar_free(NULL);
    /* the real clock: a final update prints elapsed and per-step times */
    FILE *out = tmpfile();
    lm_progbar *p = lm_progbar_new(out, 3, 1);
    lm_progbar_update(p, 3, NULL, true);
    lm_progbar_free(p);
    size_t n = 0;
    char *s = slurp(out, &n);
    fclose(out);
    CHECK(strstr(s, "3/3") && strstr(s, "/step") && s[n - 1] == '\n');
    free(s);
}

/* A file or pipe gets one plain line per update: no backspaces, no "\r",
 * no ANSI styles. */
static void test_lines_when_not_a_terminal(void) {
    FILE *out = tmpfile();
    fake_clock clock = {0};
    lm_progbar *p = lm_progbar_new(out, 3, 1);
    lm_progbar_set_clock(p, fake_now, &clock);
    lm_logs logs;
    lm_logs_clear(&logs);
    lm_logs_set(&logs, "loss", 0.5);
    for (int i = 1; i <= 3; i++) {
        clock.now += 1.0;
        lm_progbar_update(p, i, &logs, i == 3);
    }
    lm_progbar_free(p);
    size_t n = 0;
    char *s = slurp(out, &n);
    fclose(out);
    int lines = 0;
    for (size_t i = 0; i < n; i++) lines += s[i] == '\n';
    CHECK_MSG(lines == 3, "%d lines in \"%s\"", lines, s);
    CHECK(!strchr(s, '\b') && !strchr(s, '\r') && !strchr(s, '\x1b'));
    CHECK(strstr(s, "1/3 ━━━━━━") &&
          strstr(s, "3/3 ━━━━━━━━━━━━━━━━━━━━ 3s 1s/step - loss: 0.5000\n"));
    free(s);
}

int main(void) {
    RUN(test_lines_when_not_a_terminal);
    RUN(test_keras_outputs);
    RUN(test_interval);
    RUN(test_verbose2_order);
    RUN(test_null_safe);
    return lmt_summary("test_progbar");
}
