/* Checks made on an HDF5 file image before libhdf5 opens it.
 *
 * libhdf5 1.10 (Debian's) trusts the global heap of a file: the collections
 * ("GCOL") that hold variable-length strings, such as the "name" attributes
 * of Keras 3 weights files and the model_config of legacy .h5 files. Its
 * checks there are assertions, compiled out of release builds, so a crafted
 * file makes it read far outside its buffers (an object larger than its
 * collection, a reference to an object that does not exist), write past a
 * buffer (an object longer than the string that refers to it) or loop for
 * ever (a zero-sized free-space object). Found by fuzz/fuzz_h5_weights and
 * fuzz/fuzz_keras_archive; later releases added the checks.
 *
 * lm_h5_precheck walks every global heap collection of the image as
 * libhdf5's loader does and refuses one whose objects overrun it, then
 * checks every variable-length reference to a collection (length, address,
 * index) against the objects found. Files written by HDF5 always pass. */
#ifndef LM_IO_H5_PRECHECK_H
#define LM_IO_H5_PRECHECK_H

#include <stdbool.h>
#include <stddef.h>

/* True when the image (len bytes, an HDF5 signature at offset 0, 512,
 * 1024...) passes; else false with the reason in why (n bytes). */
bool lm_h5_precheck(const unsigned char *p, size_t len, char *why, size_t n);

#endif
