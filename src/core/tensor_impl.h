/* Tensor layout, for the library's own modules only. */
#ifndef LM_TENSOR_IMPL_H
#define LM_TENSOR_IMPL_H

#include <stdbool.h>
#include "lamina/tensor.h"

typedef struct lm_buffer {
    int refs;
    bool owned; /* false for caller memory (lm_tensor_wrap) */
    size_t bytes;
    void *data;
} lm_buffer;

struct lm_tensor {
    lm_ctx *ctx;
    lm_dtype dt;
    int ndim;
    int64_t shape[LM_MAX_DIMS];
    int64_t strides[LM_MAX_DIMS]; /* in elements */
    int64_t offset;               /* in elements */
    lm_buffer *buf;
};

/* Points a wrapping tensor at other memory with another shape, without
 * allocating (sessions use it to expose their outputs). */
void lm_tensor_rebind(lm_tensor *t, void *data, lm_dtype dt, int ndim, const int64_t *shape);
/* Moves a contiguous tensor's storage to dst, copying its contents; every
 * view sharing the storage follows. own: the buffer frees dst (lm_afree). */
void lm_tensor_move_storage(lm_tensor *t, void *dst, bool own);
/* Checks a shape: 0..8 dims, each >= 0 (or >= -1 when allow_unknown). */
bool lm_shape_valid(lm_shape s, bool allow_unknown);
/* Row-major strides of a shape. */
void lm_shape_strides(int ndim, const int64_t *shape, int64_t *strides);

#endif
