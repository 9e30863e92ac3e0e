/* Private to keras_weights*.c: the staged loader both layouts share (Keras 3
 * groups and legacy Keras 2 layer_names). Values are read into buffers and
 * checked; only kw_commit writes into the model and its optimizer. */
#ifndef LM_IO_KERAS_WEIGHTS_IMPL_H
#define LM_IO_KERAS_WEIGHTS_IMPL_H

#include "io/keras_weights.h"
#include "nn/train.h"

/* HDF5 error printing off, restored by kw_quiet_end (global library state). */
typedef struct kw_quiet {
    H5E_auto2_t fn;
    void *data;
} kw_quiet;
void kw_quiet_begin(kw_quiet *q);
void kw_quiet_end(const kw_quiet *q);
/* The innermost message of HDF5's error stack ("" when empty), then clears it. */
const char *kw_h5_detail(char *buf, size_t n);

/* Opens an in-memory HDF5 image / a whole file read into memory (checked
 * signature, core driver, read only); -1 with the message in ctx. */
hid_t kw_open_image(lm_ctx *ctx, const char *who, const char *src, const void *data, size_t len);
hid_t kw_open_file(lm_ctx *ctx, const char *who, const char *path);
/* Checks before HDF5 reads (keras_weights_check.c): the superblock and root
 * header of an image; the object header a hard link of loc points to; the
 * heap references of variable-length string attribute name of obj (np
 * elements). Files opened from images only. */
bool kw_image_ok(const void *data, size_t len);
bool kw_link_target_ok(hid_t loc, uint64_t addr);
bool kw_vlen_refs_ok(hid_t obj, const char *name, int64_t np);
/* A string attribute (scalar or one element; fixed or variable length) of at
 * most max bytes, malloc'd; NULL when absent (*err empty) or bad (*err set). */
char *kw_attr_str(hid_t obj, const char *name, size_t max, char *err, size_t errn);
/* A string-array attribute, or Keras's chunked form (name0, name1...): *out
 * holds n malloc'd strings (free with kw_str_list_free). -1 on error. */
int kw_attr_str_list(hid_t obj, const char *name, char ***out, char *err, size_t errn);
void kw_str_list_free(char **list, int n);

typedef struct kw_load {
    lm_model *m;
    const char *who, *src;
    lm_status st; /* the first failure */
    int n, cap;
    lm_weight **w; /* destinations */
    float **val;   /* staged values, numel of each weight */
    /* optimizer state, staged by kw_stage_optimizer */
    bool opt_load, opt_build, has_lr;
    int64_t iterations;
    float lr;
    int n_train; /* trainable weights in lm_model_weights order (the optimizer's) */
    lm_weight **train;
    int64_t *sizes;
    float *slot[LM_OPT_MAX_SLOTS];
} kw_load;

void kw_load_init(kw_load *L, lm_model *m, const char *who, const char *src);
void kw_load_free(kw_load *L);
/* lm_fail on the model's context with "who: src: " in front; the first
 * failure is kept in L->st. */
lm_status kw_fail(kw_load *L, lm_status st, const char *fmt, ...) LM_PRINTF(3, 4);

/* Opens path below loc, one hard link at a time (soft and external links are
 * refused), as an object of type want (H5I_GROUP or H5I_DATASET). When a link
 * is absent and missing is not NULL, sets *missing and returns -1 without a
 * message; every other failure records one. */
hid_t kw_open(kw_load *L, hid_t loc, const char *path, H5I_type_t want, bool *missing);
/* Checks dataset ds (named where in messages) against weight w of layer
 * owner (rank, dims, a float type, the lamina_crc32 attribute) and stages
 * its values. */
lm_status kw_stage_weight(kw_load *L, hid_t ds, const char *where, const lm_layer *owner,
                          lm_weight *w);
/* Stages the optimizer's variables from n datasets in Keras's order
 * (names[i] for messages). A count that fits neither the optimizer as it is
 * nor as built for the model's trainable weights fails when strict, else
 * prints Keras's UserWarning and stages nothing. */
lm_status kw_stage_optimizer(kw_load *L, int n, const hid_t *ds, const char *const *names,
                             bool strict);
/* Builds the optimizer if needed, then copies every staged value in. */
lm_status kw_commit(kw_load *L);

/* The model's trainable weights in Keras's trainable_variables order. */
int kw_keras_trainable(lm_model *m, lm_weight **out, int max);
/* Keras's weights of a layer for legacy files (trainable then non-trainable,
 * wrapped layers first); returns the count. */
int kw_legacy_weights(lm_layer *l, lm_weight **out, int max);
/* Whether the model has been built (every layer has its weights). */
bool kw_model_built(const lm_model *m);

#endif
