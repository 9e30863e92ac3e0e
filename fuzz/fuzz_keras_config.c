/* Fuzz target: the Keras model config JSON (config.json of a .keras file,
 * model.to_json(), Keras 2's model_config). A config that builds must write
 * itself back (lm_model_to_json) as a config that builds again and writes
 * the same text. An input that is a two-element list is read as
 * [model_config, training_config], Keras 2's pair in legacy .h5 files. */
#include "fuzz_util.h"
#include "io/keras_config.h"

/* Weight elements a fuzzed model may create: generous for real configs,
 * small enough that no input makes the run allocate gigabytes (a bare config
 * gets 2^31 in lm_model_from_json; that bound is the parser's, tested by
 * the unit tests). */
#define FUZZ_PARAM_BUDGET ((int64_t)1 << 22)

static lm_model *config_model(const cJSON *root, const cJSON *training, char *err, size_t n) {
    lm_kc_reader r = {.param_budget = FUZZ_PARAM_BUDGET};
    lm_model *m = lm_kc_model_from_cjson(&r, root, training);
    if (!m) {
        LM_FUZZ_CHECK(r.st != LM_OK);
        lm_fuzz_check_message(r.err);
    }
    if (err) snprintf(err, n, "%s", r.err);
    return m;
}

static int lm_fuzz_keras_config(const uint8_t *data, size_t size) {
    cJSON *root = cJSON_ParseWithLength((const char *)data, size);
    if (!root) return 0; /* cJSON's own parser is not ours to fuzz */
    const cJSON *model = root, *training = NULL;
    if (cJSON_IsArray(root) && cJSON_GetArraySize(root) == 2) {
        model = cJSON_GetArrayItem(root, 0);
        training = cJSON_GetArrayItem(root, 1);
    }
    lm_model *m = config_model(model, training, NULL, 0);
    if (m) {
        char *json = lm_model_to_json(m);
        LM_FUZZ_CHECK(json != NULL);
        cJSON *again = cJSON_Parse(json);
        LM_FUZZ_CHECK(again != NULL);
        char err[1024];
        lm_model *m2 = config_model(again, NULL, err, sizeof err);
        if (!m2) fprintf(stderr, "written config does not load: %s\n%s\n", err, json);
        LM_FUZZ_CHECK(m2 != NULL);
        char *json2 = lm_model_to_json(m2);
        LM_FUZZ_CHECK(json2 != NULL);
        if (strcmp(json, json2)) fprintf(stderr, "config changed:\n%s\n%s\n", json, json2);
        LM_FUZZ_CHECK(!strcmp(json, json2));
        free(json2);
        lm_model_free(m2);
        cJSON_Delete(again);
        free(json);
        lm_model_free(m);
    }
    cJSON_Delete(root);
    return 0;
}

LM_FUZZ_MAIN(lm_fuzz_keras_config)
