/* Replays the fuzz inputs through the fuzz targets' own entry points (the
 * fuzz/fuzz_*.c files, compiled here without libFuzzer): every crash input
 * kept in fuzz/regressions/<target>/ and every seed of fuzz/corpus/<target>/.
 * A parser that crashes, reads out of bounds (under ASan), refuses an input
 * without a message or breaks a round trip stops the test. */
#define LM_FUZZ_REPLAY
#include "../fuzz/fuzz_csv.c"
#include "../fuzz/fuzz_h5_weights.c"
#include "../fuzz/fuzz_idx.c"
#include "../fuzz/fuzz_keras_archive.c"
#include "../fuzz/fuzz_keras_config.c"
#include "../fuzz/fuzz_npy.c"
#include "../fuzz/fuzz_npz.c"
#include "lmtest.h"
#include <dirent.h>
#include <libgen.h>

typedef int (*fuzz_fn)(const uint8_t *, size_t);

static const struct {
    const char *name;
    fuzz_fn fn;
} targets[] = {
    {"idx", lm_fuzz_idx},
    {"npy", lm_fuzz_npy},
    {"npz", lm_fuzz_npz},
    {"csv", lm_fuzz_csv},
    {"keras_config", lm_fuzz_keras_config},
    {"keras_archive", lm_fuzz_keras_archive},
    {"h5_weights", lm_fuzz_h5_weights},
};

static char fuzz_dir[1024];

/* fuzz/ next to tests/: from LAMINA_TEST_DATA (tests/data) or this file. */
static void find_fuzz_dir(void) {
    const char *td = getenv("LAMINA_TEST_DATA");
    if (td && *td) {
        snprintf(fuzz_dir, sizeof fuzz_dir, "%s/../../fuzz", td);
    } else {
        char self[1024];
        snprintf(self, sizeof self, "%s", __FILE__);
        snprintf(fuzz_dir, sizeof fuzz_dir, "%s/../fuzz", dirname(self));
    }
}

static int by_name(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static uint8_t *read_whole(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 4096, n = 0;
    uint8_t *buf = malloc(cap);
    while (buf) {
        n += fread(buf + n, 1, cap - n, f);
        if (n < cap) break;
        uint8_t *nb = realloc(buf, cap *= 2);
        if (!nb) free(buf);
        buf = nb;
    }
    int err = ferror(f);
    fclose(f);
    if (err) {
        free(buf);
        return NULL;
    }
    *len = n;
    return buf;
}

/* Runs every regular file of dir (sorted, dot files skipped) through fn;
 * the number of files, -1 when dir is missing. */
static int replay_dir(const char *dir, fuzz_fn fn) {
    DIR *d = opendir(dir);
    if (!d) return -1;
    char **names = NULL;
    int n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        if (n == cap) {
            char **nn = realloc(names, (size_t)(cap = cap ? 2 * cap : 64) * sizeof *names);
            if (!nn) break;
            names = nn;
        }
        names[n++] = strdup(e->d_name);
    }
    closedir(d);
    if (n) qsort(names, (size_t)n, sizeof *names, by_name);
    int done = 0;
    for (int i = 0; i < n; i++) {
        char path[2048];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        struct stat sb;
        if (stat(path, &sb) || !S_ISREG(sb.st_mode)) continue;
        size_t len = 0;
        uint8_t *data = read_whole(path, &len);
        CHECK_MSG(data != NULL, "cannot read %s", path);
        if (data) {
            fprintf(stderr, "  %s\n", path); /* names the input if the next call crashes */
            fn(data, len);
            free(data);
            done++;
        }
    }
    for (int i = 0; i < n; i++) free(names[i]);
    free(names);
    return done;
}

static void test_replay(void) {
    int total = 0;
    for (size_t t = 0; t < sizeof targets / sizeof *targets; t++) {
        char dir[1536];
        snprintf(dir, sizeof dir, "%s/corpus/%s", fuzz_dir, targets[t].name);
        int seeds = replay_dir(dir, targets[t].fn);
        CHECK_MSG(seeds > 0, "no seeds in %s", dir);
        snprintf(dir, sizeof dir, "%s/regressions/%s", fuzz_dir, targets[t].name);
        int regs = replay_dir(dir, targets[t].fn); /* -1: none found for this target yet */
        fprintf(stderr, "%s: %d seeds, %d regression inputs\n", targets[t].name, seeds,
                regs < 0 ? 0 : regs);
        total += (seeds > 0 ? seeds : 0) + (regs > 0 ? regs : 0);
    }
    CHECK(total > 0);
}

int main(void) {
    find_fuzz_dir();
    RUN(test_replay);
    return lmt_summary("test_fuzz_regressions");
}
