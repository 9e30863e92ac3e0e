/* Fuzz target: NPY arrays in memory (lm_npy_load_mem). An array that loads
 * must survive a round trip through lm_npy_save_mem unchanged. */
#include "fuzz_util.h"

static int lm_fuzz_npy(const uint8_t *data, size_t size) {
    lm_ctx *ctx = lm_ctx_new();
    if (!ctx) return 0;
    lm_tensor *t = lm_npy_load_mem(ctx, data, size, "fuzz.npy");
    if (!t) {
        lm_fuzz_check_message(lm_ctx_error(ctx));
    } else {
        void *buf = NULL;
        size_t len = 0;
        if (lm_npy_save_mem(t, &buf, &len) == LM_OK) {
            lm_tensor *u = lm_npy_load_mem(ctx, buf, len, "round trip");
            LM_FUZZ_CHECK(u != NULL && lm_fuzz_same_tensor(t, u));
            lm_tensor_free(u);
            free(buf);
        }
        lm_tensor_free(t);
    }
    lm_ctx_free(ctx);
    return 0;
}

LM_FUZZ_MAIN(lm_fuzz_npy)
