/* lamina evaluate MODEL --data ... : model.evaluate from the shell. */
#include "cli.h"

static const char help[] =
    "usage: lamina evaluate [-h] MODEL --data SOURCE [--batch-size N] [--verbose N]\n"
    "                       [options]\n\n"
    "Computes a model's loss and metrics on data, as Keras's model.evaluate, and\n"
    "prints one 'name: value' line for each (after the progress bar, unless\n"
    "--verbose 0). The model is compiled as its file says; --loss, --metrics\n"
    "and --optimizer override that (a config JSON without compile_config needs\n"
    "--loss).\n\n"
    "Options:\n"
    "  --data SOURCE           evaluation data (see below; required)\n"
    "  --batch-size N          samples per batch (default 32)\n"
    "  --verbose N             0 results only, 1 progress bar too (default)\n"
    "  --loss NAME             mse, mae, huber, binary_crossentropy,\n"
    "                          categorical_crossentropy, sparse_categorical_crossentropy\n"
    "  --metrics A,B           accuracy, mae, mse, precision, recall, ...\n"
    "  --optimizer NAME        (only completes a compile; evaluate does not train)\n"
    "  --x-cols A,B            CSV input columns (names or 0-based indices)\n"
    "  --y-cols A,B            CSV label columns\n"
    "  --no-header             the CSV file has no header line\n"
    "  -h, --help              show this help and exit\n\n";

#define MAX_RESULTS 64

int cmd_evaluate(int argc, char **argv) {
    const char *cmd = "evaluate";
    const char *data = NULL, *batch_s = NULL, *verbose_s = NULL;
    cli_compile cc = {0};
    cli_csv csv = {0};
    const cli_opt opts[] = {
        {"data", 0, &data, NULL},
        {"batch-size", 0, &batch_s, NULL},
        {"verbose", 0, &verbose_s, NULL},
        {"optimizer", 0, &cc.optimizer, NULL},
        {"loss", 0, &cc.loss, NULL},
        {"metrics", 0, &cc.metrics, NULL},
        {"x-cols", 0, &csv.x_cols, NULL},
        {"y-cols", 0, &csv.y_cols, NULL},
        {"no-header", 0, NULL, &csv.no_header},
    };
    const char *pos[1];
    int n_pos;
    bool want_help;
    int rc = cli_parse(cmd, argc, argv, opts, (int)(sizeof opts / sizeof *opts), pos, 1, &n_pos,
                       &want_help);
    if (rc != CLI_OK) return rc;
    if (want_help) return fputs(help, stdout), fputs(cli_data_help, stdout), CLI_OK;
    if (n_pos != 1) return cli_usage(cmd, "give the model file");
    if (!data) return cli_usage(cmd, "give the evaluation data with --data");
    long batch = 32, verbose = 1;
    if ((batch_s && cli_int(cmd, "batch-size", batch_s, 1, 1L << 30, &batch)) ||
        (verbose_s && cli_int(cmd, "verbose", verbose_s, 0, 1, &verbose)))
        return CLI_USAGE;

    lm_model *m = cli_load_model(cmd, pos[0]);
    if (!m) return CLI_FAIL;
    cli_data d = {0};
    rc = cli_apply_compile(cmd, m, &cc);
    if (rc == CLI_OK)
        rc = cli_load_data(cmd, lm_model_ctx(m), data, CLI_SPLIT_TEST, &csv, true, &d);
    if (rc == CLI_OK) rc = cli_fit_data(cmd, m, &d);
    if (rc == CLI_OK) {
        double res[MAX_RESULTS];
        fflush(stdout);
        int n = lm_evaluate(m, d.x, d.y, res, MAX_RESULTS, .batch_size = (int)batch,
                            .verbose = verbose ? 1 : LM_SILENT);
        if (n < 0) rc = cli_fail(cmd, "%s", lm_model_error(m));
        for (int i = 0; i < n && i < MAX_RESULTS; i++)
            printf("%s: %.9g\n", lm_model_metric_name(m, i), res[i]);
    }
    cli_data_free(&d);
    lm_model_free(m);
    return rc;
}
