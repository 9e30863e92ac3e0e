/* Fuzz target: .keras archives (zip of config.json, metadata.json and
 * model.weights.h5) through lm_load, which also dispatches HDF5 content to
 * the legacy Keras 2 .h5 reader; and the same file through lm_load_weights
 * into a fixed model (the archive's model.weights.h5 member alone). */
#include "fuzz_util.h"
#include <lamina/callbacks.h>
#include <lamina/saving.h>

static int lm_fuzz_keras_archive(const uint8_t *data, size_t size) {
    char path[512];
    if (lm_fuzz_write_tmp(path, sizeof path, "input.keras", data, size)) return 0;
    lm_model *m = lm_load(path);
    if (!m) {
        lm_fuzz_check_message(lm_saving_error());
    } else {
        char *json = lm_model_to_json(m);
        LM_FUZZ_CHECK(json != NULL);
        free(json);
        lm_model_free(m);
    }
    lm_model *w = lm_fuzz_mlp();
    if (w) {
        if (lm_load_weights(w, path) != LM_OK) lm_fuzz_check_message(lm_ctx_error(lm_model_ctx(w)));
        lm_model_free(w);
    }
    unlink(path);
    return 0;
}

LM_FUZZ_MAIN(lm_fuzz_keras_archive)
