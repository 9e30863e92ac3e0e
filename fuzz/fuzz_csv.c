/* Fuzz target: CSV files (lm_csv_load reads a path, so the input goes to a
 * private temporary file), read with the option sets users pass: every
 * column under a header, no header, columns by index, by name, and ';' as
 * the separator. */
#include "fuzz_util.h"

static void csv_once(lm_ctx *ctx, const char *path, lm_csv_opts o) {
    lm_tensor *t = lm_csv_load(ctx, path, o);
    if (!t)
        lm_fuzz_check_message(lm_ctx_error(ctx));
    else
        LM_FUZZ_CHECK(lm_tensor_ndim(t) == 2 && lm_tensor_dtype(t) == LM_F32);
    lm_tensor_free(t);
}

static int lm_fuzz_csv(const uint8_t *data, size_t size) {
    char path[512];
    if (lm_fuzz_write_tmp(path, sizeof path, "input.csv", data, size)) return 0;
    lm_ctx *ctx = lm_ctx_new();
    if (ctx) {
        static const int idx[] = {1, 0, 1};
        static const char *const cols[] = {"label", "Passengers", "f0"};
        csv_once(ctx, path, (lm_csv_opts){0});
        csv_once(ctx, path, (lm_csv_opts){.no_header = true});
        csv_once(ctx, path, (lm_csv_opts){.indices = idx, .n_indices = 3});
        csv_once(ctx, path, (lm_csv_opts){.columns = cols + 1, .n_columns = 1});
        csv_once(ctx, path, (lm_csv_opts){.columns = cols, .n_columns = 3, .sep = ';'});
        lm_ctx_free(ctx);
    }
    unlink(path);
    return 0;
}

LM_FUZZ_MAIN(lm_fuzz_csv)
