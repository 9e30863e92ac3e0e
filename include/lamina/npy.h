/* NumPy .npy files: read and write arrays of float32, float64, the integer
 * types and uint8, in C order. */
#ifndef LAMINA_NPY_H
#define LAMINA_NPY_H

#include "lamina/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Loads a .npy file. float32/float64/int32/int64/uint8 keep their dtype;
 * int8/int16/uint16 widen to int32, uint32 to int64, bool to uint8. Fortran
 * order, object arrays, big-endian data and malformed headers are refused
 * with a message. NULL on error. */
lm_tensor *lm_npy_load(lm_ctx *ctx, const char *path);

/* Saves a tensor as .npy (version 1.0, little-endian, C order). The file is
 * written to a temporary name in the same directory, synced, then renamed. */
lm_status lm_npy_save(const lm_tensor *t, const char *path);

#ifdef __cplusplus
}
#endif
#endif
