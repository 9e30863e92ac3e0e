/* Fuzz target: .keras archives (zip of config.json, metadata.json and
 * model.weights.h5) through lm_load, which also dispatches HDF5 content to
 * the legacy Keras 2 .h5 reader; a model that loads must save (lm_save) and
 * load again with the same config. Then the same file through
 * lm_load_weights into a fixed model (the archive's model.weights.h5 member
 * alone). */
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
        /* What loads must save, and load again as the same model. */
        char *json = lm_model_to_json(m), again[512];
        LM_FUZZ_CHECK(json != NULL);
        if (!lm_fuzz_write_tmp(again, sizeof again, "again.keras", NULL, 0)) {
            if (lm_save(m, again) != LM_OK)
                fprintf(stderr, "save: %s\n", lm_ctx_error(lm_model_ctx(m)));
            lm_model *m2 = lm_load(again);
            if (!m2) fprintf(stderr, "load of the saved model: %s\n", lm_saving_error());
            LM_FUZZ_CHECK(m2 != NULL);
            char *json2 = lm_model_to_json(m2);
            LM_FUZZ_CHECK(json2 != NULL && !strcmp(json, json2));
            free(json2);
            lm_model_free(m2);
            unlink(again);
        }
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
