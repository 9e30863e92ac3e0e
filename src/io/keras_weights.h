/* Internal interface of the HDF5 side of Keras files (keras_weights*.c,
 * owned by "kweights"), used by the zip/JSON side (keras_archive.c and
 * keras_config.c, "kfile"), by lm_save_weights / lm_load_weights and by
 * BackupAndRestore.
 *
 * Layout (Keras 3 saving_lib, H5IOStore): every Keras object with a
 * save_own_variables method gets a group "<object path>/vars" carrying a
 * "name" attribute (the object's name, a variable-length UTF-8 string) and
 * its variables as datasets "0", "1", ... The object path of a layer is
 * "layers/<snake_case(class)>[_<k>]" in Keras's model.layers order (not the
 * layer's name), recurrent layers keep their variables in ".../cell/vars",
 * Bidirectional in ".../forward_layer/..." and ".../backward_layer/...",
 * the model itself has the empty root "vars" group, and the optimizer
 * "optimizer/vars": iterations, learning_rate (absent with a schedule),
 * then its slots in Keras's optimizer.variables order (Adam interleaves
 * momentum and velocity per variable; RMSprop's velocities, momentums and
 * average gradients come as separate blocks).
 *
 * Lamina writes files with HDF5's 1.8 format (checksummed metadata) and a
 * "lamina_crc32" attribute on each dataset (CRC-32 of its little-endian
 * bytes), which Keras ignores; reads check it when present, so a damaged
 * Lamina-written file is refused instead of loading altered weights.
 *
 * Errors go to the model's context (lm_fail on m->ctx, never the sticky
 * model error) with a message; HDF5's own error printing is silenced around
 * every call here. A failed read leaves the model and optimizer untouched. */
#ifndef LM_IO_KERAS_WEIGHTS_H
#define LM_IO_KERAS_WEIGHTS_H

#include <hdf5.h>
#include <stdbool.h>
#include <stddef.h>
#include "nn/nn.h"

/* ---- Keras 3 layout (.weights.h5, model.weights.h5 of .keras) ---- */

/* Writes the model's weights in Keras 3's layout into an open HDF5 file (or
 * group). With with_optimizer, also the optimizer's variables when the model
 * is compiled (an optimizer not yet built for the model's trainable weights
 * writes iterations and learning_rate only, as Keras does). */
lm_status lm_h5_write_model_weights(lm_model *m, hid_t loc, bool with_optimizer);

/* Reads weights written in that layout into a built model, checking every
 * group, link, rank, shape, dtype and checksum before changing anything.
 * With with_optimizer and a compiled model whose file has the optimizer's
 * variables, builds the optimizer for the model's trainable weights when
 * needed and restores its state, learning rate and iteration count (so the
 * next fit continues the same run). A file whose optimizer variables do not
 * match the model's optimizer is loaded without them and a UserWarning is
 * printed, as Keras does. */
lm_status lm_h5_read_model_weights(lm_model *m, hid_t loc, bool with_optimizer);

/* model.weights.h5 of a .keras archive as an in-memory HDF5 image (core
 * driver, no temporary file): *data (free with free()) and *len. */
lm_status lm_h5_model_weights_image(lm_model *m, bool with_optimizer, void **data, size_t *len);

/* Reads model.weights.h5 from an in-memory image of len bytes. */
lm_status lm_h5_load_model_weights_image(lm_model *m, const void *data, size_t len,
                                         bool with_optimizer);

/* ---- options for callers that need more (BackupAndRestore, tools) ---- */
typedef struct lm_h5_io_opts {
    const char *who;       /* message prefix: "load_weights" (default "keras weights") */
    const char *src;       /* file named in messages (default "the HDF5 file") */
    bool optimizer;        /* read / write the optimizer's variables */
    bool strict_optimizer; /* reading: missing or mismatched optimizer state is an error */
    int64_t epoch;         /* writing: >= 0 stores a "lamina_epoch" root attribute */
    int64_t *epoch_out;    /* reading: that attribute, or -1 when absent */
} lm_h5_io_opts;

lm_status lm_h5_write_model_weights_ex(lm_model *m, hid_t loc, const lm_h5_io_opts *o);
lm_status lm_h5_read_model_weights_ex(lm_model *m, hid_t loc, const lm_h5_io_opts *o);
lm_status lm_h5_load_model_weights_image_ex(lm_model *m, const void *data, size_t len,
                                            const lm_h5_io_opts *o);

/* A .weights.h5 file: written atomically (temporary file in the same folder,
 * fsync, rename, fsync of the folder); read whole, then parsed. */
lm_status lm_h5_save_weights_file(lm_model *m, const char *path, const lm_h5_io_opts *o);
lm_status lm_h5_load_weights_file(lm_model *m, const char *path, const lm_h5_io_opts *o);

/* ---- legacy Keras 2 .h5 files (keras_weights_legacy.c) ---- */
/* Whether path is an HDF5 file with a "model_config" attribute. */
bool lm_h5_is_legacy_model(const char *path);
/* The "model_config" attribute (JSON, free with free()) and the
 * "training_config" attribute (*training_config, NULL when absent or when
 * training_config is NULL), or NULL with the message in ctx. */
char *lm_h5_legacy_model_config(lm_ctx *ctx, const char *path, char **training_config);
/* Loads the "model_weights" group (or, for files of save_weights, the root)
 * with its layer_names / weight_names attributes into a model built from its
 * model_config, matching layers with weights in Keras's model.layers order
 * as Keras's legacy loader does. */
lm_status lm_h5_legacy_load_weights(lm_model *m, const char *path);
/* Restores the "optimizer_weights" group into the compiled model's optimizer
 * by position in Keras 3's optimizer.variables order; as Keras does, a
 * mismatch (a Keras 2 file, another optimizer) prints a UserWarning and
 * leaves the optimizer fresh. LM_OK when the file has no optimizer state. */
lm_status lm_h5_legacy_load_optimizer(lm_model *m, const char *path);

/* ---- helpers shared by keras_weights*.c, the archive side and callbacks ---- */
/* Keras's model.layers order: Sequential layers in order; for functional
 * models the order of Keras's map_graph (by depth from the inputs, ties in
 * traversal order), InputLayers included. Writes at most max entries:
 * layers[i] the layer, or NULL for model input inputs[i] (inputs may be
 * NULL). Returns the count, or -1 when memory runs out. */
int lm_keras_layer_order(lm_model *m, lm_layer **layers, int *inputs, int max);
/* keras.src.utils.naming.to_snake_case: "RMSprop" -> "rm_sprop". */
void lm_keras_snake_case(const char *name, char *out, size_t n);
/* Writes len bytes to path atomically (see above). who prefixes messages. */
lm_status lm_write_file_atomic(lm_ctx *ctx, const char *who, const char *path, const void *data,
                               size_t len);
/* Reads a whole regular file of at most max bytes (*data: free with free()). */
lm_status lm_read_file_all(lm_ctx *ctx, const char *who, const char *path, size_t max, void **data,
                           size_t *len);

#endif
