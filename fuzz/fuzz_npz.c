/* Fuzz target: NPZ archives in memory (lm_npz_load_mem). An archive that
 * loads must survive a round trip through lm_npz_save_mem (stored members)
 * with the same names and arrays. */
#include "fuzz_util.h"

static void npz_round_trip(lm_ctx *ctx, const lm_npz *z) {
    int n = lm_npz_count(z);
    const char **names = calloc((size_t)n + 1, sizeof *names);
    const lm_tensor **arrays = calloc((size_t)n + 1, sizeof *arrays);
    if (names && arrays) {
        for (int i = 0; i < n; i++) {
            names[i] = lm_npz_name(z, i);
            arrays[i] = lm_npz_array(z, i);
            LM_FUZZ_CHECK(names[i] != NULL && arrays[i] != NULL);
        }
        void *buf = NULL;
        size_t len = 0;
        if (lm_npz_save_mem(ctx, n, names, arrays, false, &buf, &len) == LM_OK) {
            lm_npz *y = lm_npz_load_mem(ctx, buf, len, "round trip");
            LM_FUZZ_CHECK(y != NULL && lm_npz_count(y) == n);
            for (int i = 0; i < n; i++) {
                LM_FUZZ_CHECK(!strcmp(lm_npz_name(y, i), names[i]));
                LM_FUZZ_CHECK(lm_fuzz_same_tensor(lm_npz_array(y, i), arrays[i]));
            }
            lm_npz_free(y);
            free(buf);
        }
    }
    free(names);
    free(arrays);
}

static int lm_fuzz_npz(const uint8_t *data, size_t size) {
    lm_ctx *ctx = lm_ctx_new();
    if (!ctx) return 0;
    lm_npz *z = lm_npz_load_mem(ctx, data, size, "fuzz.npz");
    if (!z) {
        lm_fuzz_check_message(lm_ctx_error(ctx));
    } else {
        LM_FUZZ_CHECK(lm_npz_count(z) >= 0 && lm_npz_name(z, lm_npz_count(z)) == NULL);
        npz_round_trip(ctx, z);
        lm_npz_free(z);
    }
    lm_ctx_free(ctx);
    return 0;
}

LM_FUZZ_MAIN(lm_fuzz_npz)
