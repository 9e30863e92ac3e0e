/* Tests of lm_csv_load: the airline passengers series (from LAMINA_DATA),
 * quoting and line-ending variants, each error with its line number, and a
 * small fuzz run over crafted bytes (meant for the sanitizer build). */
#include "lamina/csv.h"
#include "lmtest.h"
#include <stdint.h>
#include <unistd.h>

static lm_ctx *ctx;
static char dir[64];

/* Writes n bytes into dir/name and returns the path (static buffer). */
static const char *file_n(const char *name, const char *text, size_t n) {
    static char path[128];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    if (!f) return path;
    if (n) CHECK(fwrite(text, 1, n, f) == n);
    fclose(f);
    return path;
}

static const char *file(const char *name, const char *text) {
    return file_n(name, text, strlen(text));
}

static lm_tensor *load(const char *text, lm_csv_opts o) {
    return lm_csv_load(ctx, file("t.csv", text), o);
}

/* The tensor is float32 (rows, cols) holding want. */
static void check_values(lm_tensor *t, int64_t rows, int64_t cols, const float *want) {
    CHECK(t != NULL);
    if (!t) {
        fprintf(stderr, "  error: %s\n", lm_ctx_error(ctx));
        return;
    }
    CHECK(lm_tensor_dtype(t) == LM_F32);
    CHECK(lm_tensor_ndim(t) == 2);
    CHECK(lm_tensor_dim(t, 0) == rows);
    CHECK(lm_tensor_dim(t, 1) == cols);
    if (lm_tensor_numel(t) == rows * cols)
        for (int64_t i = 0; i < rows * cols; i++) {
            if (isinf(want[i]))
                CHECK(lm_tensor_get(t, i) == want[i]);
            else
                CHECK_NEAR(lm_tensor_get(t, i), want[i], 1e-7);
        }
    lm_tensor_free(t);
}

/* Loading fails and the message holds each of the given fragments. */
static void check_error(lm_tensor *t, const char *a, const char *b) {
    CHECK(t == NULL);
    lm_tensor_free(t);
    CHECK_CONTAINS(lm_ctx_error(ctx), a);
    if (b) CHECK_CONTAINS(lm_ctx_error(ctx), b);
}

static void test_airline(void) {
    const char *data = lmt_data_dir();
    if (!data) {
        fprintf(stderr, "  LAMINA_DATA unset: skipping the airline file\n");
        return;
    }
    char path[512];
    snprintf(path, sizeof path, "%s/airline-passengers.csv", data);
    const char *cols[] = {"Passengers"};
    lm_tensor *t = lm_csv_load(ctx, path, (lm_csv_opts){.columns = cols, .n_columns = 1});
    CHECK(t != NULL);
    if (!t) {
        fprintf(stderr, "  error: %s\n", lm_ctx_error(ctx));
        return;
    }
    CHECK(lm_tensor_dim(t, 0) == 144 && lm_tensor_dim(t, 1) == 1);
    const float first_year[12] = {112, 118, 132, 129, 121, 135, 148, 148, 136, 119, 104, 118};
    for (int i = 0; i < 12; i++) CHECK(lm_tensor_get(t, i) == first_year[i]);
    CHECK(lm_tensor_get(t, 143) == 432);
    double sum = 0;
    for (int i = 0; i < 144; i++) sum += lm_tensor_get(t, i);
    CHECK(sum == 40363);
    /* The same column by index. */
    lm_tensor *u =
        lm_csv_load(ctx, path, (lm_csv_opts){.indices = (const int[]){1}, .n_indices = 1});
    CHECK(u && lm_tensor_dim(u, 0) == 144 && lm_tensor_get(u, 0) == 112);
    lm_tensor_free(u);
    lm_tensor_free(t);
    /* Every column: the quoted months are not numbers; the message says where. */
    check_error(lm_csv_load(ctx, path, (lm_csv_opts){0}), "airline-passengers.csv:2:",
                "column \"Month\" (index 0): \"1949-01\" is not a number");
}

static void test_formats(void) {
    const char *c1[] = {"b"}, *c2[] = {"c", "a"};
    /* Quoted numbers, "" escapes, separators and line breaks inside quotes. */
    check_values(load("a,b,c\n\"1\",\"x, \"\"y\"\"\",3\n4,\"two\nlines\",6\n",
                      (lm_csv_opts){.columns = c2, .n_columns = 2}),
                 2, 2, (const float[]){3, 1, 6, 4});
    /* CRLF, no final newline, blank lines, spaces around numbers, a byte order mark. */
    check_values(load("\xEF\xBB\xBF"
                      "a,b\r\n 1 , 2.5e1\r\n\r\n  \n-3,inf",
                      (lm_csv_opts){0}),
                 2, 2, (const float[]){1, 25, -3, INFINITY});
    /* Another separator; the header names with quotes. */
    check_values(
        load("\"a\";\"b\"\n1;2\n3;4\n", (lm_csv_opts){.sep = ';', .columns = c1, .n_columns = 1}),
        2, 1, (const float[]){2, 4});
    /* No header: the first line is data. */
    check_values(
        load("1,2,3\n4,5,6",
             (lm_csv_opts){.no_header = true, .indices = (const int[]){2, 0}, .n_indices = 2}),
        2, 2, (const float[]){3, 1, 6, 4});
    /* Header only: no rows. */
    lm_tensor *t = load("a,b\n", (lm_csv_opts){0});
    CHECK(t && lm_tensor_dim(t, 0) == 0 && lm_tensor_dim(t, 1) == 2);
    lm_tensor_free(t);
    /* A quote inside an unquoted field is kept as text (and unselected here). */
    check_values(load("a,b\n1,x\"y\n", (lm_csv_opts){.indices = (const int[]){0}, .n_indices = 1}),
                 1, 1, (const float[]){1});
    /* A trailing separator makes an empty last field, selected by nobody. */
    check_values(load("a,b,\n1,2,\n", (lm_csv_opts){.indices = (const int[]){1}, .n_indices = 1}),
                 1, 1, (const float[]){2});
}

static void test_errors(void) {
    const char *unknown[] = {"Passengers", "nope"};
    check_error(lm_csv_load(ctx, file("e.csv", "Month,Passengers\n1,2\n"),
                            (lm_csv_opts){.columns = unknown, .n_columns = 2}),
                "no column named \"nope\"", "\"Month\", \"Passengers\"");
    check_error(load("a,b\n1,2\n3,4,5\n", (lm_csv_opts){0}), "t.csv:3: ragged row: 3 fields",
                "header (line 1) has 2");
    check_error(load("a,b\n1,2\n\n3\n", (lm_csv_opts){0}), "t.csv:4: ragged row: 1 fields", NULL);
    check_error(load("", (lm_csv_opts){0}), "empty file", NULL);
    check_error(load(" \n\r\n\n", (lm_csv_opts){0}), "empty file", NULL);
    check_error(load("a,b\n1,\"2\n", (lm_csv_opts){0}), "t.csv:2: unterminated quoted field", NULL);
    check_error(load("a,b\n1,\"2\"x\n", (lm_csv_opts){0}), "t.csv:2: unexpected character 'x'",
                NULL);
    check_error(load("a,b\n1,2\n3, \n", (lm_csv_opts){0}),
                "t.csv:3: column \"b\" (index 1) is empty", NULL);
    check_error(load("a,b\n1,2\n3,4x\n", (lm_csv_opts){0}), "t.csv:3:", "\"4x\" is not a number");
    /* Line numbers count the line breaks inside quoted fields. */
    check_error(
        load("a,b\n\"x\ny\",1\n2,z\n", (lm_csv_opts){.indices = (const int[]){1}, .n_indices = 1}),
        "t.csv:4:", "\"z\" is not a number");
    check_error(load("1,2\nq,4\n", (lm_csv_opts){.no_header = true}), "t.csv:2: column (index 0)",
                "\"q\"");
    /* A NUL byte inside a number. */
    check_error(lm_csv_load(ctx, file_n("nul.csv", "a\n1\0002\n", 6), (lm_csv_opts){0}),
                "nul.csv:2:", "is not a number");
    check_error(load("a,b\n1,2\n", (lm_csv_opts){.indices = (const int[]){2}, .n_indices = 1}),
                "column index 2 is out of range", "2 columns");
    const char *cols[] = {"a"};
    check_error(load("a\n1\n", (lm_csv_opts){.columns = cols,
                                             .n_columns = 1,
                                             .indices = (const int[]){0},
                                             .n_indices = 1}),
                "not both", NULL);
    check_error(load("a\n1\n", (lm_csv_opts){.columns = cols, .n_columns = 1, .no_header = true}),
                "need a header", NULL);
    check_error(load("a\n1\n", (lm_csv_opts){.sep = '"'}), "separator", NULL);
    check_error(lm_csv_load(ctx, "/nonexistent/x.csv", (lm_csv_opts){0}),
                "cannot open /nonexistent/x.csv", NULL);
    /* A long cell is shown shortened. */
    char long_cell[600] = "a\n";
    memset(long_cell + 2, '7', 500);
    long_cell[300] = 'x';
    check_error(load(long_cell, (lm_csv_opts){0}), "t.csv:2:", "...\" is not a number");
}

/* Random files over the characters that matter; none may crash or overread. */
static void test_fuzz(void) {
    static const char alphabet[] = ",\"\n\r1.e- a\t;";
    static const int swap[2] = {1, 0};
    uint64_t r = 12345;
    int loaded = 0;
    for (int it = 0; it < 2000; it++) {
        char text[48];
        r = r * 6364136223846793005ULL + 1442695040888963407ULL;
        size_t n = (size_t)(r >> 59) + (size_t)(it % 17);
        for (size_t i = 0; i < n; i++) {
            r = r * 6364136223846793005ULL + 1442695040888963407ULL;
            unsigned k = (unsigned)(r >> 33) % (sizeof alphabet); /* includes the NUL */
            text[i] = alphabet[k];
        }
        lm_csv_opts o = {.no_header = it & 1, .sep = (it & 2) ? ';' : 0};
        if (it & 4) {
            o.indices = swap;
            o.n_indices = 2;
        }
        lm_tensor *t = lm_csv_load(ctx, file_n("fuzz.csv", text, n), o);
        if (t) {
            loaded++;
            CHECK(lm_tensor_ndim(t) == 2);
        } else {
            CHECK(lm_ctx_error(ctx)[0] != 0);
        }
        lm_tensor_free(t);
    }
    CHECK(loaded > 0);
}

int main(void) {
    ctx = lm_ctx_new();
    /* Memory-backed when possible: the fuzz run rewrites its file thousands of times. */
    snprintf(dir, sizeof dir, "/dev/shm/lm_csv_XXXXXX");
    if (!mkdtemp(dir)) {
        snprintf(dir, sizeof dir, "/tmp/lm_csv_XXXXXX");
        if (!mkdtemp(dir)) return 1;
    }
    if (!ctx) return 1;
    RUN(test_airline);
    RUN(test_formats);
    RUN(test_errors);
    RUN(test_fuzz);
    const char *names[] = {"t.csv", "e.csv", "nul.csv", "fuzz.csv"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char p[128];
        snprintf(p, sizeof p, "%s/%s", dir, names[i]);
        unlink(p);
    }
    rmdir(dir);
    lm_ctx_free(ctx);
    return lmt_summary("test_csv");
}
