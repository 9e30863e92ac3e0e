/* Tensors: typed, strided, reference-counted n-dimensional arrays (up to 8
 * dimensions, row-major). Views (reshape, transpose, slice) share storage. */
#ifndef LAMINA_TENSOR_H
#define LAMINA_TENSOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "lamina/context.h"
#include "lamina/status.h"

#ifdef __cplusplus
extern "C" {
#endif

#define LM_MAX_DIMS 8

typedef enum lm_dtype { LM_F32 = 0, LM_F64, LM_I32, LM_I64, LM_U8, LM_DTYPE_COUNT } lm_dtype;

/* A shape passed by value. A dimension of -1 means "unknown until run time"
 * (the batch dimension of a placeholder). */
typedef struct lm_shape {
    int ndim;
    int64_t dims[LM_MAX_DIMS];
} lm_shape;

#define LM__NARGS_(a, b, c, d, e, f, g, h, n, ...) n
#define LM__NARGS(...)                             LM__NARGS_(__VA_ARGS__, 8, 7, 6, 5, 4, 3, 2, 1, 0)
/* LM_SHAPE(28, 28, 1): a shape literal of 1 to 8 dimensions. */
#define LM_SHAPE(...) ((lm_shape){LM__NARGS(__VA_ARGS__), {__VA_ARGS__}})
/* The shape of a scalar (0 dimensions). */
#define LM_SCALAR ((lm_shape){0, {0}})

typedef struct lm_tensor lm_tensor;

/* Size in bytes of one element of dtype, 0 for an invalid dtype. */
size_t lm_dtype_size(lm_dtype dt);
/* Name of a dtype ("float32", "int32", ...). */
const char *lm_dtype_name(lm_dtype dt);
/* Number of elements of a shape; -1 if a dimension is unknown or the shape is invalid. */
int64_t lm_shape_numel(lm_shape s);
/* Writes "(2, 3)" style text (unknown dimensions as "None") into buf; returns buf. */
char *lm_shape_str(lm_shape s, char *buf, size_t len);

/* New zero-filled contiguous tensor. NULL on error (message in ctx). Zero-sized
 * dimensions are allowed; negative ones are not. */
lm_tensor *lm_tensor_new(lm_ctx *ctx, lm_dtype dt, lm_shape shape);
/* New tensor holding a copy of nbytes of data (must equal numel * dtype size). */
lm_tensor *lm_tensor_from_data(lm_ctx *ctx, lm_dtype dt, lm_shape shape, const void *data,
                               size_t nbytes);
/* New tensor viewing caller memory without copying; the caller keeps it alive
 * and writable for as long as the tensor and its views live. */
lm_tensor *lm_tensor_wrap(lm_ctx *ctx, lm_dtype dt, lm_shape shape, void *data);
/* Releases a tensor handle; storage goes when its last view is freed. NULL is a no-op. */
void lm_tensor_free(lm_tensor *t);

lm_ctx *lm_tensor_ctx(const lm_tensor *t);        /* owning context */
lm_dtype lm_tensor_dtype(const lm_tensor *t);     /* element type */
int lm_tensor_ndim(const lm_tensor *t);           /* number of dimensions */
lm_shape lm_tensor_shape(const lm_tensor *t);     /* shape by value */
int64_t lm_tensor_dim(const lm_tensor *t, int i); /* dimension i (negative counts from the end) */
int64_t lm_tensor_numel(const lm_tensor *t);      /* number of elements */
/* Stride of dimension i in elements. */
int64_t lm_tensor_stride(const lm_tensor *t, int i);
/* True when elements are laid out densely in row-major order. */
bool lm_tensor_is_contiguous(const lm_tensor *t);
/* Address of the first element (of the view). Use strides for non-contiguous views. */
void *lm_tensor_data(lm_tensor *t);
const void *lm_tensor_cdata(const lm_tensor *t);
/* Typed shortcut: the first element as float*, or NULL if the dtype is not float32. */
float *lm_tensor_f32(lm_tensor *t);

/* Sets every element to v (converted to the tensor's dtype). */
lm_status lm_tensor_fill(lm_tensor *t, double v);
/* Copies nbytes (== numel * dtype size) from src, in row-major order, into the tensor. */
lm_status lm_tensor_copy_from(lm_tensor *t, const void *src, size_t nbytes);
/* Copies the tensor in row-major order into dst (nbytes == numel * dtype size). */
lm_status lm_tensor_copy_to(const lm_tensor *t, void *dst, size_t nbytes);
/* Copies src into dst element by element; shapes must match, dtypes may differ. */
lm_status lm_tensor_assign(lm_tensor *dst, const lm_tensor *src);
/* Element i (in row-major order) converted to double; NaN on a bad index. */
double lm_tensor_get(const lm_tensor *t, int64_t i);
/* Sets element i (in row-major order). */
lm_status lm_tensor_set(lm_tensor *t, int64_t i, double v);

/* A view with a new shape (one dimension may be -1). Copies only when the
 * tensor is not contiguous. */
lm_tensor *lm_tensor_reshape(lm_tensor *t, lm_shape shape);
/* A view with dimensions permuted: result dim i is input dim perm[i]. */
lm_tensor *lm_tensor_transpose(lm_tensor *t, const int *perm);
/* A view of [start, stop) with step along one axis (negative axis counts from the end). */
lm_tensor *lm_tensor_slice(lm_tensor *t, int axis, int64_t start, int64_t stop, int64_t step);
/* A contiguous copy (or a new handle to the same storage if already contiguous). */
lm_tensor *lm_tensor_contiguous(lm_tensor *t);
/* A new contiguous tensor with the same contents converted to dt. */
lm_tensor *lm_tensor_cast(const lm_tensor *t, lm_dtype dt);
/* A deep, contiguous copy. */
lm_tensor *lm_tensor_clone(const lm_tensor *t);

/* Fills with U[lo, hi) from the context's generator (float tensors only). */
lm_status lm_tensor_random_uniform(lm_tensor *t, double lo, double hi);
/* Fills with N(mean, stddev^2). */
lm_status lm_tensor_random_normal(lm_tensor *t, double mean, double stddev);
/* Fills with N(mean, stddev^2) redrawn outside two standard deviations, as TensorFlow does. */
lm_status lm_tensor_random_truncated_normal(lm_tensor *t, double mean, double stddev);

#ifdef __cplusplus
}
#endif
#endif
