/* Shared pieces of the `lamina` command: option parsing, messages and exit
 * codes, loading models and data sets for the subcommands. */
#ifndef LAMINA_CLI_H
#define LAMINA_CLI_H

#include <lamina/lamina.h>
#include <lamina/model.h>
#include <lamina/npz.h>
#include <lamina/saving.h>
#include <stdbool.h>
#include <stdio.h>

/* Exit codes: success, a failure while running, a usage error (as argparse). */
enum { CLI_OK = 0, CLI_FAIL = 1, CLI_USAGE = 2 };

/* ---- messages ---- */
/* "lamina CMD: error: ..." on stderr; returns CLI_FAIL. */
int cli_fail(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The same followed by "Try 'lamina CMD --help'."; returns CLI_USAGE. */
int cli_usage(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- options ---- */
/* One option of a subcommand: "--name VALUE" (or "--name=VALUE"), or a flag
 * "--name" when value is NULL. short_name is 0 or a letter ("-o VALUE"). */
typedef struct cli_opt {
    const char *name;
    char short_name;
    const char **value;
    bool *flag;
} cli_opt;

/* Parses argv[1..argc) (argv[0] is the subcommand) into the options and up
 * to max_pos positional arguments; "-h"/"--help" set *help. Returns CLI_OK or
 * CLI_USAGE after printing why. A lone "--" ends the options. */
int cli_parse(const char *cmd, int argc, char **argv, const cli_opt *opts, int n_opts,
              const char **pos, int max_pos, int *n_pos, bool *help);
/* Converts an option value; CLI_USAGE (with a message) unless it is a whole
 * number in [lo, hi] or a finite number in [lo, hi]. */
int cli_int(const char *cmd, const char *opt, const char *s, long lo, long hi, long *out);
int cli_double(const char *cmd, const char *opt, const char *s, double lo, double hi, double *out);
bool cli_ends_with(const char *s, const char *suffix);
/* Writes len bytes to path atomically (temporary file in the same folder,
 * fsync, rename), reporting failures; returns a CLI_* code. */
int cli_write_atomic(const char *cmd, const char *path, const void *data, size_t len);

/* ---- models ---- */
/* Loads a .keras file, a legacy .h5 file or a config JSON (by content), and
 * reports failures; NULL on error (CLI_FAIL to return). */
lm_model *cli_load_model(const char *cmd, const char *path);

/* Compile options given on the command line (NULL: not given). */
typedef struct cli_compile {
    const char *optimizer, *learning_rate, *loss, *metrics;
} cli_compile;
/* Applies them: a new optimizer, loss or metrics recompile (keeping what the
 * file gave for the others); a learning rate alone only sets it. A model with
 * no compile_config needs at least --loss. Returns a CLI_* code. */
int cli_apply_compile(const char *cmd, lm_model *m, const cli_compile *c);

/* What the CLI reads from a built model that the public API does not show. */
bool cli_model_compiled(lm_model *m);
lm_loss cli_model_loss(lm_model *m);
int cli_model_inputs(lm_model *m);
int cli_model_outputs(lm_model *m);
/* Shapes with the batch dimension as -1; false when not known. */
bool cli_model_input_shape(lm_model *m, int i, lm_shape *s);
bool cli_model_output_shape(lm_model *m, int i, lm_shape *s);

/* ---- data ---- */
typedef enum cli_split { CLI_SPLIT_TRAIN, CLI_SPLIT_TEST } cli_split;

/* CSV column options shared by the subcommands that read --data. */
typedef struct cli_csv {
    const char *x_cols, *y_cols;
    bool no_header;
} cli_csv;

typedef struct cli_data {
    lm_tensor *x, *y; /* owned; y NULL when the source has none */
} cli_data;

/* Reads a --data source: "mnist" (or "mnist:train", "mnist:test"), "X.npy,Y.npy",
 * "X.npy" alone (no labels), "file.npz" (arrays x/y, else x_train/y_train or
 * x_test/y_test for the split; a ":train" or ":test" suffix picks one), or
 * "file.csv" with csv->x_cols / y_cols. Returns a CLI_* code. */
int cli_load_data(const char *cmd, lm_ctx *ctx, const char *spec, cli_split split,
                  const cli_csv *csv, bool need_y, cli_data *d);
/* Fits x and y to the model the way Keras users prepare them: samples
 * reshaped to the model's input shape when only the layout differs (MNIST's
 * (28, 28) for an input of (784,) or (28, 28, 1)); integer class labels
 * one-hot encoded for categorical cross-entropy, one-hot labels turned into
 * class indices for the sparse loss, and (N,) targets made (N, 1) for an
 * output of (N, 1). Returns a CLI_* code. */
int cli_fit_data(const char *cmd, lm_model *m, cli_data *d);
void cli_data_free(cli_data *d);

/* Help text for the --data forms, shared by fit, evaluate and predict. */
extern const char cli_data_help[];

/* ---- subcommands: cmd_X(argc, argv) with argv[0] == "X" ---- */
int cmd_summary(int argc, char **argv);
int cmd_fit(int argc, char **argv);
int cmd_evaluate(int argc, char **argv);
int cmd_predict(int argc, char **argv);
int cmd_convert(int argc, char **argv);
int cmd_datasets(int argc, char **argv);

#endif
