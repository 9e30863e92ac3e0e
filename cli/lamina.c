/* The `lamina` command: Keras models from the shell (summary, fit, evaluate,
 * predict, convert) and the data sets. Results go to stdout, messages to
 * stderr; the exit code is 0 on success, 1 on failure, 2 on a usage error. */
#include "cli.h"
#include <string.h>

#ifndef LAMINA_VERSION
#define LAMINA_VERSION "unknown"
#endif

typedef struct command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *what;
} command;

static const command commands[] = {
    {"summary", cmd_summary, "print a model's summary table"},
    {"fit", cmd_fit, "train a model (a .keras file or a config JSON) and save it"},
    {"evaluate", cmd_evaluate, "loss and metrics of a model on data"},
    {"predict", cmd_predict, "a model's outputs for inputs in a .npy file"},
    {"convert", cmd_convert, "convert a model file (legacy .h5 to .keras, or to config JSON)"},
    {"datasets", cmd_datasets, "list the data sets, or fetch one into the cache"},
};
#define N_COMMANDS ((int)(sizeof commands / sizeof *commands))

static void usage(FILE *f) {
    fprintf(f, "usage: lamina [--version] [--help] COMMAND [ARGS]\n\n"
               "Keras models in C, from the shell.\n\n"
               "Commands:\n");
    for (int i = 0; i < N_COMMANDS; i++)
        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].what);
    fprintf(f, "\nRun 'lamina COMMAND --help' for a command's options.\n"
               "Exit status: 0 success, 1 failure, 2 usage error.\n");
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return CLI_USAGE;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "-h") || !strcmp(cmd, "--help")) {
        usage(stdout);
        return CLI_OK;
    }
    if (!strcmp(cmd, "--version") || !strcmp(cmd, "version")) {
        printf("lamina %s\n", LAMINA_VERSION);
        return CLI_OK;
    }
    /* "lamina help fit" is "lamina fit --help". */
    if (!strcmp(cmd, "help")) {
        if (argc < 3) {
            usage(stdout);
            return CLI_OK;
        }
        for (int i = 0; i < N_COMMANDS; i++)
            if (!strcmp(argv[2], commands[i].name)) {
                static char help_opt[] = "--help";
                char *args[] = {argv[2], help_opt, NULL};
                return commands[i].run(2, args);
            }
        return cli_usage(NULL, "unknown command '%s'", argv[2]);
    }
    for (int i = 0; i < N_COMMANDS; i++)
        if (!strcmp(cmd, commands[i].name)) return commands[i].run(argc - 1, argv + 1);
    return cli_usage(NULL, "unknown command '%s'", cmd);
}
