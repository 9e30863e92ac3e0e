/* Fuzz target: HDF5 weights. The input is read as Keras 3's layout
 * (.weights.h5 / model.weights.h5: layers/<name>/vars/<i>, optimizer/vars)
 * from memory with the core driver, leniently and strictly about optimizer
 * state; then as a legacy Keras 2 .h5 file (model_config, model_weights with
 * layer_names / weight_names, optimizer_weights) from a temporary file, the
 * way lm_load and lm_load_weights read them. Weights go into a fixed model,
 * the mlp of tests/data/keras/weights. */
#include "fuzz_util.h"
#include "io/keras_weights.h"

static void check_failed(lm_status st, lm_model *m) {
    if (st != LM_OK) lm_fuzz_check_message(lm_ctx_error(lm_model_ctx(m)));
}

static int lm_fuzz_h5_weights(const uint8_t *data, size_t size) {
    lm_model *m = lm_fuzz_mlp();
    if (!m) return 0;
    int64_t epoch = 0;
    lm_h5_io_opts lenient = {.who = "load_weights", .src = "fuzz.weights.h5", .optimizer = true};
    lm_h5_io_opts strict = {.who = "restore",
                            .src = "fuzz.weights.h5",
                            .optimizer = true,
                            .strict_optimizer = true,
                            .epoch_out = &epoch};
    check_failed(lm_h5_load_model_weights_image_ex(m, data, size, &lenient), m);
    check_failed(lm_h5_load_model_weights_image_ex(m, data, size, &strict), m);

    char path[512];
    if (!lm_fuzz_write_tmp(path, sizeof path, "input.h5", data, size)) {
        lm_ctx *ctx = lm_ctx_new();
        if (ctx && lm_h5_is_legacy_model(path)) {
            char *training = NULL;
            char *config = lm_h5_legacy_model_config(ctx, path, &training);
            if (!config) lm_fuzz_check_message(lm_ctx_error(ctx));
            free(config);
            free(training);
        }
        lm_ctx_free(ctx);
        check_failed(lm_h5_legacy_load_weights(m, path), m);
        check_failed(lm_h5_legacy_load_optimizer(m, path), m);
        unlink(path);
    }
    lm_model_free(m);
    return 0;
}

LM_FUZZ_MAIN(lm_fuzz_h5_weights)
