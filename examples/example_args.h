/* The command line every example takes: --epochs, --batch-size, --seed. */
#ifndef LAMINA_EXAMPLE_ARGS_H
#define LAMINA_EXAMPLE_ARGS_H

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* --epochs, --batch-size, --seed; false (after a usage line) on anything else. */
static inline bool parse_args(int argc, char **argv, int *epochs, int *batch,
                              unsigned long long *seed) {
    for (int i = 1; i < argc; i++) {
        if (i + 1 < argc && !strcmp(argv[i], "--epochs"))
            *epochs = atoi(argv[++i]);
        else if (i + 1 < argc && !strcmp(argv[i], "--batch-size"))
            *batch = atoi(argv[++i]);
        else if (i + 1 < argc && !strcmp(argv[i], "--seed"))
            *seed = strtoull(argv[++i], NULL, 10);
        else {
            fprintf(stderr, "usage: %s [--epochs N] [--batch-size N] [--seed N]\n", argv[0]);
            return false;
        }
    }
    if (*epochs < 1 || *batch < 1) {
        fprintf(stderr, "%s: epochs and batch size must be positive\n", argv[0]);
        return false;
    }
    return true;
}

#endif
