/* Fuzz target: IDX files, plain or gzip (lm_idx_load reads a path, so the
 * input goes to a private temporary file first). */
#include "fuzz_util.h"

static int lm_fuzz_idx(const uint8_t *data, size_t size) {
    char path[512];
    if (lm_fuzz_write_tmp(path, sizeof path, "input.idx", data, size)) return 0;
    lm_ctx *ctx = lm_ctx_new();
    if (ctx) {
        lm_tensor *t = lm_idx_load(ctx, path);
        if (!t)
            lm_fuzz_check_message(lm_ctx_error(ctx));
        else
            LM_FUZZ_CHECK(lm_tensor_ndim(t) >= 1 && lm_tensor_ndim(t) <= 8);
        lm_tensor_free(t);
        lm_ctx_free(ctx);
    }
    unlink(path);
    return 0;
}

LM_FUZZ_MAIN(lm_fuzz_idx)
