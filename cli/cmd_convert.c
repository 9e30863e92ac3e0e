/* lamina convert IN OUT: a model file to Keras 3's .keras format (legacy
 * Keras 2 .h5 files, config JSON), or a model's config JSON. */
#include "cli.h"
#include <stdlib.h>
#include <string.h>

static const char help[] =
    "usage: lamina convert [-h] IN OUT\n\n"
    "Converts a model file. IN is a legacy Keras 2 .h5 file, a .keras file or a\n"
    "model config JSON (its weights freshly initialised). OUT is:\n"
    "  NAME.keras  Keras 3's format (config, weights and optimizer state), which\n"
    "              keras.models.load_model opens\n"
    "  NAME.json   the model's config JSON only (the config.json of a .keras file)\n\n"
    "Options:\n"
    "  -h, --help  show this help and exit\n";

static int write_json(lm_model *m, const char *path) {
    char *json = lm_model_to_json(m);
    if (!json) return cli_fail("convert", "%s", lm_model_error(m));
    size_t len = strlen(json);
    json[len] = '\n'; /* replaces the terminator: the file ends with a new line */
    int rc = cli_write_atomic("convert", path, json, len + 1);
    free(json);
    return rc;
}

int cmd_convert(int argc, char **argv) {
    const char *pos[2];
    int n_pos;
    bool want_help;
    int rc = cli_parse("convert", argc, argv, NULL, 0, pos, 2, &n_pos, &want_help);
    if (rc != CLI_OK) return rc;
    if (want_help) return fputs(help, stdout), CLI_OK;
    if (n_pos != 2) return cli_usage("convert", "give the input and output files");
    bool json = cli_ends_with(pos[1], ".json");
    if (!json && !cli_ends_with(pos[1], ".keras"))
        return cli_usage("convert",
                         "the output file must end in .keras (or .json for the config only), "
                         "not '%s'",
                         pos[1]);
    lm_model *m = cli_load_model("convert", pos[0]);
    if (!m) return CLI_FAIL;
    if (json)
        rc = write_json(m, pos[1]);
    else if (lm_save(m, pos[1]) != LM_OK)
        rc = cli_fail("convert", "%s", lm_model_error(m));
    lm_model_free(m);
    return rc;
}
