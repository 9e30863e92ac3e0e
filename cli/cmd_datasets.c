/* lamina datasets list | fetch NAME: the data sets --data can name, and
 * downloading one into the cache ahead of time. */
#include "cli.h"
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char help[] =
    "usage: lamina datasets [-h] list\n"
    "       lamina datasets [-h] fetch NAME [--url URL] [--cache-dir DIR]\n\n"
    "Lists the data sets that --data can name, and where each is found; or\n"
    "fetches one (downloads what is missing and checks the published checksums).\n"
    "Files are read from $LAMINA_DATA/NAME/ when there, else from the cache,\n"
    "$XDG_CACHE_HOME/lamina/datasets/NAME/ (default ~/.cache/lamina/datasets/NAME/).\n\n"
    "Options:\n"
    "  --url URL        fetch from this folder URL (default $LAMINA_DATASETS_URL, else\n"
    "                   the Google Cloud mirror Keras uses)\n"
    "  --cache-dir DIR  fetch into DIR instead of the cache\n"
    "  -h, --help       show this help and exit\n";

static const char *const mnist_files[4] = {
    "train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz"};

/* Whether dir holds all four MNIST files. */
static bool has_mnist(const char *dir) {
    char p[4096];
    for (int i = 0; i < 4; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, mnist_files[i]);
        if (access(p, R_OK) != 0) return false;
    }
    return true;
}

/* The folder MNIST is read from, as lamina/datasets.h describes, into buf;
 * false when it is in neither place yet (buf then names the cache). */
static bool mnist_location(char *buf, size_t len) {
    const char *data = getenv("LAMINA_DATA"), *xdg = getenv("XDG_CACHE_HOME"),
               *home = getenv("HOME");
    if (data && *data) {
        snprintf(buf, len, "%s/mnist", data);
        if (has_mnist(buf)) return true;
    }
    if (xdg && xdg[0] == '/')
        snprintf(buf, len, "%s/lamina/datasets/mnist", xdg);
    else
        snprintf(buf, len, "%s/.cache/lamina/datasets/mnist", home ? home : "~");
    return has_mnist(buf);
}

static int list(void) {
    char where[4096];
    bool here = mnist_location(where, sizeof where);
    printf("%-8s %-58s %s\n", "Name", "Description", "Status");
    printf("%-8s %-58s %s %s\n", "mnist",
           "handwritten digits: 60000 train, 10000 test, 28x28 uint8",
           here ? "available in" : "not fetched yet; cache:", where);
    return CLI_OK;
}

static int fetch(const char *name, const char *url, const char *cache_dir) {
    if (strcmp(name, "mnist") != 0)
        return cli_usage("datasets", "unknown data set '%s' (known: mnist)", name);
    lm_ctx *ctx = lm_ctx_new();
    if (!ctx) return cli_fail("datasets", "out of memory");
    lm_tensor *xtr, *ytr, *xte, *yte;
    lm_status st = url || cache_dir
                       ? lm_mnist_load_data_from(ctx, url, cache_dir, &xtr, &ytr, &xte, &yte)
                       : lm_mnist_load_data(ctx, &xtr, &ytr, &xte, &yte);
    int rc = CLI_OK;
    if (st != LM_OK) {
        rc = cli_fail("datasets", "%s", lm_ctx_error(ctx));
    } else {
        char where[4096];
        if (cache_dir)
            snprintf(where, sizeof where, "%s", cache_dir);
        else
            mnist_location(where, sizeof where);
        printf("mnist: %lld training and %lld test samples in %s\n",
               (long long)lm_tensor_dim(xtr, 0), (long long)lm_tensor_dim(xte, 0), where);
        lm_tensor_free(xtr);
        lm_tensor_free(ytr);
        lm_tensor_free(xte);
        lm_tensor_free(yte);
    }
    lm_ctx_free(ctx);
    return rc;
}

int cmd_datasets(int argc, char **argv) {
    const char *url = NULL, *cache_dir = NULL;
    const cli_opt opts[] = {{"url", 0, &url, NULL}, {"cache-dir", 0, &cache_dir, NULL}};
    const char *pos[2];
    int n_pos;
    bool want_help;
    int rc = cli_parse("datasets", argc, argv, opts, 2, pos, 2, &n_pos, &want_help);
    if (rc != CLI_OK) return rc;
    if (want_help) return fputs(help, stdout), CLI_OK;
    if (n_pos == 0) return cli_usage("datasets", "give an action: list or fetch NAME");
    if (!strcmp(pos[0], "list")) {
        if (n_pos > 1) return cli_usage("datasets", "unexpected argument '%s'", pos[1]);
        if (url || cache_dir) return cli_usage("datasets", "list takes no options");
        return list();
    }
    if (!strcmp(pos[0], "fetch")) {
        if (n_pos < 2) return cli_usage("datasets", "fetch needs a data set name (mnist)");
        return fetch(pos[1], url, cache_dir);
    }
    return cli_usage("datasets", "unknown action '%s' (list, fetch)", pos[0]);
}
