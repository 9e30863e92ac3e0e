/* lamina predict MODEL IN -o OUT: model.predict from the shell. */
#include "cli.h"
#include <stdlib.h>

static const char help[] =
    "usage: lamina predict [-h] MODEL IN [-o OUT] [--batch-size N] [--verbose N]\n\n"
    "Runs a model on the inputs in IN, as Keras's model.predict.\n\n"
    "Arguments:\n"
    "  MODEL                   a .keras file, a legacy .h5 file or a config JSON\n"
    "  IN                      inputs: X.npy, FILE.npz (array x or x_test), FILE.csv\n"
    "                          (with --x-cols) or mnist (the test images)\n\n"
    "Options:\n"
    "  -o, --output OUT        OUT.npy: the (first) output as float32; OUT.npz: every\n"
    "                          output, named output_0, output_1, ... Without -o the\n"
    "                          outputs are printed, one sample per line.\n"
    "  --batch-size N          samples per batch (default 32)\n"
    "  --verbose N             1 progress bar (default with -o), 0 none\n"
    "  --x-cols A,B            CSV input columns (names or 0-based indices)\n"
    "  --no-header             the CSV file has no header line\n"
    "  -h, --help              show this help and exit\n";

#define MAX_OUT 8

/* One line per sample, the values of the sample in row-major order. */
static void print_rows(const lm_tensor *t) {
    int64_t n = lm_tensor_ndim(t) ? lm_tensor_dim(t, 0) : 1;
    int64_t per = n ? lm_tensor_numel(t) / n : 0;
    for (int64_t i = 0; i < n; i++) {
        for (int64_t k = 0; k < per; k++)
            printf("%s%.9g", k ? " " : "", lm_tensor_get(t, i * per + k));
        putchar('\n');
    }
}

static int write_outputs(const char *out, lm_ctx *ctx, int n, lm_tensor **res) {
    if (cli_ends_with(out, ".npy")) {
        if (lm_npy_save(res[0], out) != LM_OK)
            return cli_fail("predict", "%s", lm_ctx_error(lm_tensor_ctx(res[0])));
        return CLI_OK;
    }
    char names[MAX_OUT][24];
    const char *np[MAX_OUT];
    const lm_tensor *arr[MAX_OUT];
    for (int i = 0; i < n; i++) {
        snprintf(names[i], sizeof names[i], "output_%d", i);
        np[i] = names[i];
        arr[i] = res[i];
    }
    if (lm_npz_save(ctx, out, n, np, arr, false) != LM_OK)
        return cli_fail("predict", "%s", lm_ctx_error(ctx));
    return CLI_OK;
}

int cmd_predict(int argc, char **argv) {
    const char *cmd = "predict";
    const char *out = NULL, *batch_s = NULL, *verbose_s = NULL;
    cli_csv csv = {0};
    const cli_opt opts[] = {
        {"output", 'o', &out, NULL},
        {"batch-size", 0, &batch_s, NULL},
        {"verbose", 0, &verbose_s, NULL},
        {"x-cols", 0, &csv.x_cols, NULL},
        {"no-header", 0, NULL, &csv.no_header},
    };
    const char *pos[2];
    int n_pos;
    bool want_help;
    int rc = cli_parse(cmd, argc, argv, opts, (int)(sizeof opts / sizeof *opts), pos, 2, &n_pos,
                       &want_help);
    if (rc != CLI_OK) return rc;
    if (want_help) return fputs(help, stdout), CLI_OK;
    if (n_pos != 2) return cli_usage(cmd, "give the model file and the input file");
    long batch = 32, verbose = out ? 1 : 0;
    if ((batch_s && cli_int(cmd, "batch-size", batch_s, 1, 1L << 30, &batch)) ||
        (verbose_s && cli_int(cmd, "verbose", verbose_s, 0, 1, &verbose)))
        return CLI_USAGE;
    if (out && !cli_ends_with(out, ".npy") && !cli_ends_with(out, ".npz"))
        return cli_usage(cmd, "option '--output': the file must end in .npy or .npz, not '%s'",
                         out);

    lm_model *m = cli_load_model(cmd, pos[0]);
    if (!m) return CLI_FAIL;
    cli_data d = {0};
    lm_tensor *res[MAX_OUT] = {0};
    int n = 0;
    if (cli_model_inputs(m) > 1)
        rc = cli_fail(cmd, "the model has %d inputs; predict reads one array", cli_model_inputs(m));
    if (rc == CLI_OK)
        rc = cli_load_data(cmd, lm_model_ctx(m), pos[1], CLI_SPLIT_TEST, &csv, false, &d);
    if (rc == CLI_OK) rc = cli_fit_data(cmd, m, &d);
    if (rc == CLI_OK) {
        fflush(stdout);
        n = lm_predict_multi(
            m, 1, &d.x, MAX_OUT, res,
            (lm_predict_opts){.batch_size = (int)batch, .verbose = verbose ? 1 : LM_SILENT});
        if (n < 1) rc = cli_fail(cmd, "%s", lm_model_error(m));
        if (n > MAX_OUT) n = MAX_OUT;
    }
    if (rc == CLI_OK && out) rc = write_outputs(out, lm_model_ctx(m), n, res);
    if (rc == CLI_OK && !out)
        for (int i = 0; i < n; i++) {
            if (n > 1) printf("# output_%d\n", i);
            print_rows(res[i]);
        }
    for (int i = 0; i < n; i++) lm_tensor_free(res[i]);
    cli_data_free(&d);
    lm_model_free(m);
    return rc;
}
