/* lamina fit MODEL --data ... : model.fit from the shell, with Keras's
 * progress bar, then model.save. */
#include "cli.h"
#include <string.h>

static const char help[] =
    "usage: lamina fit [-h] MODEL --data SOURCE [--epochs N] [--batch-size N]\n"
    "                  [--validation-split F] [--seed N] [--save OUT.keras] [options]\n\n"
    "Trains a model with Keras's model.fit and saves it. MODEL is a .keras file\n"
    "(training resumes with its optimizer state), a legacy .h5 file or a model\n"
    "config JSON (weights freshly initialised). The model is compiled as its file\n"
    "says (compile_config); the options below override that.\n\n"
    "Options:\n"
    "  --data SOURCE           training data (see below; required)\n"
    "  --epochs N              epochs to train (default 1)\n"
    "  --batch-size N          samples per gradient step (default 32)\n"
    "  --validation-split F    hold out the last fraction F of the data (default 0)\n"
    "  --no-shuffle            keep the sample order (default: reshuffle every epoch)\n"
    "  --seed N                seed for shuffling and dropout (default 0)\n"
    "  --verbose N             0 silent, 1 progress bar (default), 2 one line per epoch\n"
    "  --save OUT.keras        save the trained model (atomically) to OUT.keras\n"
    "  --optimizer NAME        adam, adamw, sgd, rmsprop (Keras's default), adagrad\n"
    "  --learning-rate F       the optimizer's learning rate\n"
    "  --loss NAME             mse, mae, huber, binary_crossentropy,\n"
    "                          categorical_crossentropy, sparse_categorical_crossentropy\n"
    "  --metrics A,B           accuracy, mae, mse, precision, recall, ...\n"
    "  --x-cols A,B            CSV input columns (names or 0-based indices)\n"
    "  --y-cols A,B            CSV label columns\n"
    "  --no-header             the CSV file has no header line\n"
    "  -h, --help              show this help and exit\n\n";

int cmd_fit(int argc, char **argv) {
    const char *cmd = "fit";
    const char *data = NULL, *epochs_s = NULL, *batch_s = NULL, *split_s = NULL, *seed_s = NULL,
               *verbose_s = NULL, *save = NULL;
    cli_compile cc = {0};
    cli_csv csv = {0};
    bool no_shuffle = false;
    const cli_opt opts[] = {
        {"data", 0, &data, NULL},
        {"epochs", 0, &epochs_s, NULL},
        {"batch-size", 0, &batch_s, NULL},
        {"validation-split", 0, &split_s, NULL},
        {"no-shuffle", 0, NULL, &no_shuffle},
        {"seed", 0, &seed_s, NULL},
        {"verbose", 0, &verbose_s, NULL},
        {"save", 0, &save, NULL},
        {"optimizer", 0, &cc.optimizer, NULL},
        {"learning-rate", 0, &cc.learning_rate, NULL},
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
    if (!data) return cli_usage(cmd, "give the training data with --data");
    long epochs = 1, batch = 32, seed = -1, verbose = 1;
    double split = 0;
    if ((epochs_s && cli_int(cmd, "epochs", epochs_s, 1, 1000000, &epochs)) ||
        (batch_s && cli_int(cmd, "batch-size", batch_s, 1, 1L << 30, &batch)) ||
        (split_s && cli_double(cmd, "validation-split", split_s, 0, 0.999999, &split)) ||
        (seed_s && cli_int(cmd, "seed", seed_s, 0, 0x7fffffffL, &seed)) ||
        (verbose_s && cli_int(cmd, "verbose", verbose_s, 0, 2, &verbose)))
        return CLI_USAGE;
    if (save && !cli_ends_with(save, ".keras"))
        return cli_usage(cmd, "option '--save': the file must end in .keras, not '%s'", save);

    lm_model *m = cli_load_model(cmd, pos[0]);
    if (!m) return CLI_FAIL;
    cli_data d = {0};
    lm_ctx *ctx = lm_model_ctx(m);
    if (seed >= 0) lm_ctx_seed(ctx, (uint64_t)seed);
    rc = cli_apply_compile(cmd, m, &cc);
    if (rc == CLI_OK) rc = cli_load_data(cmd, ctx, data, CLI_SPLIT_TRAIN, &csv, true, &d);
    if (rc == CLI_OK) rc = cli_fit_data(cmd, m, &d);
    if (rc == CLI_OK) {
        fflush(stdout);
        lm_history *h =
            lm_fit(m, d.x, d.y, .epochs = (int)epochs, .batch_size = (int)batch,
                   .verbose = verbose ? (int)verbose : LM_SILENT, .validation_split = split,
                   .shuffle = no_shuffle ? LM_FALSE : LM_DEFAULT);
        if (!h) rc = cli_fail(cmd, "%s", lm_model_error(m));
        lm_history_free(h);
        fflush(stdout);
    }
    if (rc == CLI_OK && save && lm_save(m, save) != LM_OK)
        rc = cli_fail(cmd, "%s", lm_model_error(m));
    cli_data_free(&d);
    lm_model_free(m);
    return rc;
}
