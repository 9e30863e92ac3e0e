/* NumPy .npz archives (numpy.savez / numpy.savez_compressed): a zip file of
 * .npy members, one per named array. */
#ifndef LAMINA_NPZ_H
#define LAMINA_NPZ_H

#include <stdbool.h>
#include <stddef.h>
#include "lamina/context.h"
#include "lamina/status.h"
#include "lamina/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Limits applied to every archive read (crafted files are refused, not
 * trusted): the number of members, the length of a member name, and the
 * expansion a deflated member may claim over its compressed size (deflate
 * cannot exceed about 1032:1, so a larger claim is a lie). */
#define LM_NPZ_MAX_MEMBERS   10000
#define LM_NPZ_MAX_NAME      255
#define LM_NPZ_MAX_INFLATION 1100

/* A loaded archive: arrays by name, in the archive's order. */
typedef struct lm_npz lm_npz;

/* Loads every array of an .npz file, as numpy.load(path) does: a member
 * "x_train.npy" becomes the array named "x_train". Members may be stored or
 * deflated; each is read with lm_npy_load_mem (same dtypes and rules).
 *
 * Refused with a message naming the file (and the member): a missing,
 * unreadable or non-regular file; a file that is not a zip archive or whose
 * central directory disagrees with its local headers; more than
 * LM_NPZ_MAX_MEMBERS members; a member name that does not end in ".npy", is
 * empty before it, longer than LM_NPZ_MAX_NAME, holds '/', '\\', a control
 * character or "..", or repeats another; encrypted members, compression
 * methods other than stored and deflate; a declared size that the
 * compressed data cannot hold (more than the archive, or a ratio above
 * LM_NPZ_MAX_INFLATION); data shorter or longer than declared, or failing
 * its CRC; a member that is not a valid .npy image. Memory grows with the
 * data actually inflated, never with a size the archive claims. An archive
 * with no members loads as an empty set. NULL on error (message in ctx). */
lm_npz *lm_npz_load(lm_ctx *ctx, const char *path);

/* lm_npz_load on len bytes in memory; `what` names the source in messages
 * ("<memory>" when NULL). */
lm_npz *lm_npz_load_mem(lm_ctx *ctx, const void *data, size_t len, const char *what);

/* Frees the archive and its arrays (tensors obtained from it must not be
 * used afterwards unless the caller made its own reference, e.g. a
 * lm_tensor_reshape view or a clone). NULL is a no-op. */
void lm_npz_free(lm_npz *z);

/* Number of arrays; the i-th name (without ".npy") and array, borrowed from
 * the archive. NULL for an index out of range. */
int lm_npz_count(const lm_npz *z);
const char *lm_npz_name(const lm_npz *z, int i);
lm_tensor *lm_npz_array(const lm_npz *z, int i);
/* The array called name, borrowed; NULL when there is none. */
lm_tensor *lm_npz_get(const lm_npz *z, const char *name);

/* Writes n arrays as an .npz file that numpy.load reads: member
 * "<names[i]>.npy" holds arrays[i] as lm_npy_save would write it. With
 * compress the members are deflated (numpy.savez_compressed), else stored
 * (numpy.savez). Names follow the reading rules above (no '/', no
 * duplicates...). The file is written atomically, like lm_npy_save: a
 * temporary file in the same folder, synced, then renamed over path; on error
 * an existing file at path is left untouched. The message goes to ctx. */
lm_status lm_npz_save(lm_ctx *ctx, const char *path, int n, const char *const *names,
                      const lm_tensor *const *arrays, bool compress);

/* As lm_npz_save into a new buffer (*data, released with free(), *len bytes). */
lm_status lm_npz_save_mem(lm_ctx *ctx, int n, const char *const *names,
                          const lm_tensor *const *arrays, bool compress, void **data, size_t *len);

#ifdef __cplusplus
}
#endif
#endif
