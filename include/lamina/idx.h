/* Readers for IDX files (the format of MNIST) and for the MNIST data set. */
#ifndef LAMINA_IDX_H
#define LAMINA_IDX_H

#include <stdbool.h>
#include "lamina/context.h"
#include "lamina/status.h"
#include "lamina/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Reads an IDX file, gzip-compressed or plain, into a new contiguous tensor
 * whose shape is the file's dimensions (1 to 8). Element types map as:
 * unsigned byte -> LM_U8; signed byte, int16, int32 -> LM_I32; float32 ->
 * LM_F32; float64 -> LM_F64. Returns NULL with a message in ctx when the file
 * is missing, malformed, truncated, followed by extra bytes, or corrupt. */
lm_tensor *lm_idx_load(lm_ctx *ctx, const char *path);

/* Loads one MNIST split from <dir>/mnist/: train ("train-*") or test
 * ("t10k-*"). *images becomes float32 (N, 28, 28) scaled to [0, 1] and
 * *labels int32 (N,) with values 0..9. On error both are set to NULL (when
 * the pointers are not NULL), nothing is leaked and the message is in ctx. */
lm_status lm_mnist_load_split(lm_ctx *ctx, const char *dir, bool train, lm_tensor **images,
                              lm_tensor **labels);

#ifdef __cplusplus
}
#endif
#endif
