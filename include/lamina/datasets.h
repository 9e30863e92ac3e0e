/* Data sets and data helpers in the spirit of keras.datasets and
 * keras.utils: MNIST with a download cache, one-hot labels, and batches of
 * rows. */
#ifndef LAMINA_DATASETS_H
#define LAMINA_DATASETS_H

#include <stdint.h>
#include "lamina/context.h"
#include "lamina/status.h"
#include "lamina/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* keras.datasets.mnist.load_data: x_train uint8 (60000, 28, 28), y_train
 * uint8 (60000,), x_test uint8 (10000, 28, 28), y_test uint8 (10000,), pixel
 * values 0..255, labels 0..9.
 *
 * Each of the four files (train-images-idx3-ubyte.gz, train-labels-idx1-
 * ubyte.gz, t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz) is read
 * from $LAMINA_DATA/mnist/ when it is there (used as is), else from the
 * cache $XDG_CACHE_HOME/lamina/datasets/mnist/ (default
 * ~/.cache/lamina/datasets/mnist/, created when missing), else downloaded
 * into the cache from $LAMINA_DATASETS_URL (default
 * https://storage.googleapis.com/cvdf-datasets/mnist/). Cached and
 * downloaded files are checked against the published MD5 checksums: a cached
 * file that does not match is downloaded again (as keras.utils.get_file
 * does); a download that does not match is deleted and the call fails.
 * Downloads print Keras's "Downloading data from <url>" and a progress bar.
 *
 * On error all four are set to NULL, nothing is left allocated and the
 * message (naming the file or URL) is in ctx. Without libcurl, downloading
 * fails with LM_ERR_UNSUPPORTED. */
lm_status lm_mnist_load_data(lm_ctx *ctx, lm_tensor **x_train, lm_tensor **y_train,
                             lm_tensor **x_test, lm_tensor **y_test);

/* As lm_mnist_load_data, ignoring $LAMINA_DATA: looks in cache_dir (the
 * folder that holds the four files itself, created when missing; NULL for the
 * default cache) and downloads what is missing from base_url (a folder URL,
 * with or without the final '/'; NULL for $LAMINA_DATASETS_URL or the
 * default mirror). */
lm_status lm_mnist_load_data_from(lm_ctx *ctx, const char *base_url, const char *cache_dir,
                                  lm_tensor **x_train, lm_tensor **y_train, lm_tensor **x_test,
                                  lm_tensor **y_test);

/* keras.utils.to_categorical: a new float32 tensor of shape
 * labels.shape + (num_classes,), 1 at each label's class and 0 elsewhere. A
 * trailing dimension of 1 is dropped first, so (N, 1) gives (N, C), as Keras.
 * labels may be any integer dtype, or floating point holding whole numbers.
 * num_classes 0 means max(labels) + 1. A label outside [0, num_classes) is an
 * error (Keras would wrap negative ones silently). NULL on error, with the
 * message in the labels' context. */
lm_tensor *lm_to_categorical(const lm_tensor *labels, int num_classes);

/* Batching helpers, along axis 0 (the samples).
 *
 * lm_rows: the view t[start : start + n] (shares storage, no copy), with n
 * cut to the rows that remain, so the last batch of a loop
 * `for (start = 0; start < N; start += batch) lm_rows(x, start, batch)`
 * is the shorter remainder, as Python slicing gives. start must be in
 * [0, N] and n >= 0. Free the view with lm_tensor_free.
 *
 * lm_take_rows: a new contiguous tensor holding rows rows[0..n) of t in
 * that order (a shuffled batch: x[idx] in NumPy); every index must be in
 * [0, N). Returns NULL on error with the message in t's context. */
lm_tensor *lm_rows(lm_tensor *t, int64_t start, int64_t n);
lm_tensor *lm_take_rows(const lm_tensor *t, const int64_t *rows, int64_t n);

#ifdef __cplusplus
}
#endif
#endif
