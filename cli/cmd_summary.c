/* lamina summary MODEL: Keras's model.summary() table. */
#include "cli.h"

static const char help[] =
    "usage: lamina summary [-h] MODEL\n\n"
    "Prints the summary table of a model, as Keras's model.summary().\n\n"
    "Arguments:\n"
    "  MODEL       a .keras file, a legacy Keras 2 .h5 file, or a model config JSON\n"
    "              (the config.json of a .keras file)\n\n"
    "Options:\n"
    "  -h, --help  show this help and exit\n";

int cmd_summary(int argc, char **argv) {
    const char *pos[1];
    int n_pos;
    bool want_help;
    int rc = cli_parse("summary", argc, argv, NULL, 0, pos, 1, &n_pos, &want_help);
    if (rc != CLI_OK) return rc;
    if (want_help) return fputs(help, stdout), CLI_OK;
    if (n_pos != 1) return cli_usage("summary", "give the model file");
    lm_model *m = cli_load_model("summary", pos[0]);
    if (!m) return CLI_FAIL;
    rc = lm_summary(m, stdout) == LM_OK ? CLI_OK : cli_fail("summary", "%s", lm_model_error(m));
    lm_model_free(m);
    return rc;
}
