/* NumPy .npy files: read and write arrays of float32, float64, the integer
 * types and uint8, in C order. */
#ifndef LAMINA_NPY_H
#define LAMINA_NPY_H

#include <stddef.h>
#include "lamina/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Loads a .npy file (format version 1.0, 2.0 or 3.0; regular files only).
 * float32/float64/int32/int64/uint8 keep their dtype; int8/int16/uint16 widen
 * to int32, uint32 to int64, bool to uint8 (0 or 1). Shape () gives a 0-d
 * tensor; zero-sized arrays load. Fortran order (unless at most one dimension
 * exceeds 1, where it is the same layout), object, string, structured and
 * complex arrays, big-endian data, more than 8 dimensions, malformed headers
 * and data shorter or longer than the shape says are refused with a message
 * naming the file. NULL on error. */
lm_tensor *lm_npy_load(lm_ctx *ctx, const char *path);

/* lm_npy_load on len bytes in memory (a .npy image, e.g. an NPZ member);
 * `what` names the source in messages ("<memory>" when NULL). */
lm_tensor *lm_npy_load_mem(lm_ctx *ctx, const void *data, size_t len, const char *what);

/* Saves a tensor as .npy (version 1.0, little-endian, C order, the data
 * starting at a multiple of 64 bytes); non-contiguous views are written in
 * row-major order. The file is written to "<path>.tmpXXXXXX" in the same
 * directory, synced, then renamed over path (which, if a symbolic link, is
 * replaced rather than followed), keeping an existing file's permissions.
 * On error the temporary file is removed and an existing file at path is
 * left untouched; the message is in the tensor's context. */
lm_status lm_npy_save(const lm_tensor *t, const char *path);

/* Encodes a tensor as lm_npy_save would write it into a new buffer (*data,
 * to be released with free(), *len bytes). */
lm_status lm_npy_save_mem(const lm_tensor *t, void **data, size_t *len);

#ifdef __cplusplus
}
#endif
#endif
