#include "core/core.h"
#include "core/tensor_impl.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

size_t lm_dtype_size(lm_dtype dt) {
    switch (dt) {
    case LM_F32:
        return 4;
    case LM_F64:
        return 8;
    case LM_I32:
        return 4;
    case LM_I64:
        return 8;
    case LM_U8:
        return 1;
    default:
        return 0;
    }
}

const char *lm_dtype_name(lm_dtype dt) {
    switch (dt) {
    case LM_F32:
        return "float32";
    case LM_F64:
        return "float64";
    case LM_I32:
        return "int32";
    case LM_I64:
        return "int64";
    case LM_U8:
        return "uint8";
    default:
        return "invalid";
    }
}

bool lm_shape_valid(lm_shape s, bool allow_unknown) {
    if (s.ndim < 0 || s.ndim > LM_MAX_DIMS) return false;
    for (int i = 0; i < s.ndim; i++)
        if (s.dims[i] < (allow_unknown ? -1 : 0)) return false;
    return true;
}

int64_t lm_shape_numel(lm_shape s) {
    if (!lm_shape_valid(s, false)) return -1;
    /* The product of the non-zero dimensions must fit too (as in NumPy):
     * strides are computed from it, even for an empty (0, 2^40, 2^40). */
    int64_t n = 1;
    bool empty = false;
    for (int i = 0; i < s.ndim; i++) {
        if (!s.dims[i])
            empty = true;
        else if (n > INT64_MAX / s.dims[i])
            return -1;
        else
            n *= s.dims[i];
    }
    return empty ? 0 : n;
}

char *lm_shape_str(lm_shape s, char *buf, size_t len) {
    if (!buf || !len) return buf;
    size_t o = 0;
    o += (size_t)snprintf(buf + o, len - o, "(");
    for (int i = 0; i < s.ndim && o < len; i++) {
        if (s.dims[i] == -1)
            o += (size_t)snprintf(buf + o, len - o, "%sNone", i ? ", " : "");
        else
            o += (size_t)snprintf(buf + o, len - o, "%s%lld", i ? ", " : "", (long long)s.dims[i]);
    }
    if (o < len) o += (size_t)snprintf(buf + o, len - o, s.ndim == 1 ? ",)" : ")");
    return buf;
}

void lm_shape_strides(int ndim, const int64_t *shape, int64_t *strides) {
    int64_t st = 1;
    for (int i = ndim - 1; i >= 0; i--) {
        strides[i] = st;
        st *= shape[i] > 0 ? shape[i] : 1;
    }
}

static lm_tensor *tensor_alloc(lm_ctx *ctx, lm_dtype dt, lm_shape shape, void *data, bool own) {
    if (!ctx) return NULL;
    if (!lm_dtype_size(dt)) {
        lm_fail(ctx, LM_ERR_DTYPE, "invalid dtype %d", (int)dt);
        return NULL;
    }
    char sb[160];
    if (!lm_shape_valid(shape, false)) {
        if (shape.ndim < 0 || shape.ndim > LM_MAX_DIMS)
            lm_fail(ctx, LM_ERR_SHAPE, "tensor: %d dimensions (at most %d)", shape.ndim,
                    LM_MAX_DIMS);
        else
            lm_fail(ctx, LM_ERR_SHAPE, "tensor: invalid shape %s",
                    lm_shape_str(shape, sb, sizeof sb));
        return NULL;
    }
    int64_t n = lm_shape_numel(shape);
    size_t bytes;
    if (n < 0 || lm_mul_size((size_t)n, lm_dtype_size(dt), &bytes)) {
        lm_fail(ctx, LM_ERR_OOM, "tensor: shape %s is too large",
                lm_shape_str(shape, sb, sizeof sb));
        return NULL;
    }
    lm_tensor *t = calloc(1, sizeof *t);
    lm_buffer *b = calloc(1, sizeof *b);
    if (!t || !b) goto oom;
    b->refs = 1;
    b->bytes = bytes;
    b->owned = own;
    if (own) {
        b->data = lm_aalloc(bytes);
        if (!b->data) goto oom;
        memset(b->data, 0, bytes);
    } else {
        b->data = data;
    }
    t->ctx = ctx;
    t->dt = dt;
    t->ndim = shape.ndim;
    memcpy(t->shape, shape.dims, sizeof t->shape);
    lm_shape_strides(t->ndim, t->shape, t->strides);
    t->buf = b;
    return t;
oom:
    free(t);
    free(b);
    lm_fail(ctx, LM_ERR_OOM, "tensor: out of memory allocating %zu bytes for shape %s", bytes,
            lm_shape_str(shape, sb, sizeof sb));
    return NULL;
}

lm_tensor *lm_tensor_new(lm_ctx *ctx, lm_dtype dt, lm_shape shape) {
    return tensor_alloc(ctx, dt, shape, NULL, true);
}

lm_tensor *lm_tensor_from_data(lm_ctx *ctx, lm_dtype dt, lm_shape shape, const void *data,
                               size_t nbytes) {
    if (ctx && !data) {
        lm_fail(ctx, LM_ERR_ARG, "tensor_from_data: data is NULL");
        return NULL;
    }
    lm_tensor *t = tensor_alloc(ctx, dt, shape, NULL, true);
    if (!t) return NULL;
    if (lm_tensor_copy_from(t, data, nbytes) != LM_OK) {
        lm_tensor_free(t);
        return NULL;
    }
    return t;
}

lm_tensor *lm_tensor_wrap(lm_ctx *ctx, lm_dtype dt, lm_shape shape, void *data) {
    if (ctx && !data && lm_shape_numel(shape) != 0) {
        lm_fail(ctx, LM_ERR_ARG, "tensor_wrap: data is NULL");
        return NULL;
    }
    return tensor_alloc(ctx, dt, shape, data, false);
}

void lm_tensor_rebind(lm_tensor *t, void *data, lm_dtype dt, int ndim, const int64_t *shape) {
    t->buf->data = data;
    t->dt = dt;
    t->ndim = ndim;
    t->offset = 0;
    for (int i = 0; i < LM_MAX_DIMS; i++) t->shape[i] = i < ndim ? shape[i] : 0;
    lm_shape_strides(ndim, t->shape, t->strides);
    t->buf->bytes = (size_t)lm_tensor_numel(t) * lm_dtype_size(dt);
}

void lm_tensor_move_storage(lm_tensor *t, void *dst, bool own) {
    size_t bytes = (size_t)lm_tensor_numel(t) * lm_dtype_size(t->dt);
    if (bytes) memcpy(dst, lm_tensor_data(t), bytes);
    if (t->buf->owned) lm_afree(t->buf->data);
    t->buf->data = dst;
    t->buf->owned = own;
    t->buf->bytes = bytes;
    t->offset = 0;
}

void lm_tensor_free(lm_tensor *t) {
    if (!t) return;
    if (--t->buf->refs == 0) {
        if (t->buf->owned) lm_afree(t->buf->data);
        free(t->buf);
    }
    free(t);
}

lm_ctx *lm_tensor_ctx(const lm_tensor *t) {
    return t ? t->ctx : NULL;
}
lm_dtype lm_tensor_dtype(const lm_tensor *t) {
    return t ? t->dt : LM_DTYPE_COUNT;
}
int lm_tensor_ndim(const lm_tensor *t) {
    return t ? t->ndim : -1;
}
lm_shape lm_tensor_shape(const lm_tensor *t) {
    lm_shape s = {0, {0}};
    if (!t) return s;
    s.ndim = t->ndim;
    memcpy(s.dims, t->shape, sizeof s.dims);
    return s;
}
int64_t lm_tensor_dim(const lm_tensor *t, int i) {
    if (!t) return -1;
    if (i < 0) i += t->ndim;
    return i >= 0 && i < t->ndim ? t->shape[i] : -1;
}
int64_t lm_tensor_stride(const lm_tensor *t, int i) {
    if (!t) return 0;
    if (i < 0) i += t->ndim;
    return i >= 0 && i < t->ndim ? t->strides[i] : 0;
}
int64_t lm_tensor_numel(const lm_tensor *t) {
    if (!t) return -1;
    int64_t n = 1;
    for (int i = 0; i < t->ndim; i++) n *= t->shape[i];
    return n;
}

bool lm_tensor_is_contiguous(const lm_tensor *t) {
    if (!t) return false;
    for (int i = 0; i < t->ndim; i++)
        if (t->shape[i] == 0) return true; /* nothing to lay out */
    int64_t st = 1;
    for (int i = t->ndim - 1; i >= 0; i--) {
        if (t->shape[i] != 1 && t->strides[i] != st) return false;
        st *= t->shape[i];
    }
    return true;
}

void *lm_tensor_data(lm_tensor *t) {
    if (!t || !t->buf->data) return NULL;
    return (char *)t->buf->data + (size_t)t->offset * lm_dtype_size(t->dt);
}
const void *lm_tensor_cdata(const lm_tensor *t) {
    return lm_tensor_data((lm_tensor *)t);
}
float *lm_tensor_f32(lm_tensor *t) {
    return t && t->dt == LM_F32 ? (float *)lm_tensor_data(t) : NULL;
}

/* Offset (in elements) of the i-th element in row-major order. */
static int64_t elem_offset(const lm_tensor *t, int64_t i) {
    int64_t off = t->offset;
    for (int d = t->ndim - 1; d >= 0; d--) {
        int64_t n = t->shape[d];
        off += (i % n) * t->strides[d];
        i /= n;
    }
    return off;
}

static double load_elem(const void *base, lm_dtype dt, int64_t off) {
    switch (dt) {
    case LM_F32:
        return ((const float *)base)[off];
    case LM_F64:
        return ((const double *)base)[off];
    case LM_I32:
        return ((const int32_t *)base)[off];
    case LM_I64:
        return (double)((const int64_t *)base)[off];
    case LM_U8:
        return ((const uint8_t *)base)[off];
    default:
        return NAN;
    }
}

static void store_elem(void *base, lm_dtype dt, int64_t off, double v) {
    switch (dt) {
    case LM_F32:
        ((float *)base)[off] = (float)v;
        break;
    case LM_F64:
        ((double *)base)[off] = v;
        break;
    case LM_I32:
        ((int32_t *)base)[off] = (int32_t)v;
        break;
    case LM_I64:
        ((int64_t *)base)[off] = (int64_t)v;
        break;
    case LM_U8:
        ((uint8_t *)base)[off] = (uint8_t)v;
        break;
    default:
        break;
    }
}

double lm_tensor_get(const lm_tensor *t, int64_t i) {
    if (!t || i < 0 || i >= lm_tensor_numel(t)) return NAN;
    return load_elem(t->buf->data, t->dt, elem_offset(t, i));
}

lm_status lm_tensor_set(lm_tensor *t, int64_t i, double v) {
    if (!t) return LM_ERR_ARG;
    if (i < 0 || i >= lm_tensor_numel(t))
        return lm_fail(t->ctx, LM_ERR_ARG, "tensor_set: index %lld out of range [0, %lld)",
                       (long long)i, (long long)lm_tensor_numel(t));
    store_elem(t->buf->data, t->dt, elem_offset(t, i), v);
    return LM_OK;
}

lm_status lm_tensor_fill(lm_tensor *t, double v) {
    if (!t) return LM_ERR_ARG;
    int64_t n = lm_tensor_numel(t);
    if (t->dt == LM_F32 && lm_tensor_is_contiguous(t)) {
        float *p = lm_tensor_f32(t), f = (float)v;
        for (int64_t i = 0; i < n; i++) p[i] = f;
        return LM_OK;
    }
    for (int64_t i = 0; i < n; i++) store_elem(t->buf->data, t->dt, elem_offset(t, i), v);
    return LM_OK;
}

static lm_status check_bytes(const lm_tensor *t, size_t nbytes, const char *fn) {
    size_t want = (size_t)lm_tensor_numel(t) * lm_dtype_size(t->dt);
    if (nbytes != want)
        return lm_fail(t->ctx, LM_ERR_ARG, "%s: %zu bytes given, tensor holds %zu", fn, nbytes,
                       want);
    return LM_OK;
}

/* Copies element by element between a strided tensor and packed memory. */
static void strided_copy(lm_tensor *t, void *packed, bool to_tensor) {
    size_t es = lm_dtype_size(t->dt);
    int64_t n = lm_tensor_numel(t);
    char *base = t->buf->data;
    for (int64_t i = 0; i < n; i++) {
        char *e = base + (size_t)elem_offset(t, i) * es;
        char *p = (char *)packed + (size_t)i * es;
        if (to_tensor)
            memcpy(e, p, es);
        else
            memcpy(p, e, es);
    }
}

lm_status lm_tensor_copy_from(lm_tensor *t, const void *src, size_t nbytes) {
    if (!t) return LM_ERR_ARG;
    if (!src && nbytes) return lm_fail(t->ctx, LM_ERR_ARG, "tensor_copy_from: source is NULL");
    lm_status s = check_bytes(t, nbytes, "tensor_copy_from");
    if (s) return s;
    if (!nbytes) return LM_OK;
    if (lm_tensor_is_contiguous(t))
        memcpy(lm_tensor_data(t), src, nbytes);
    else
        strided_copy(t, (void *)src, true);
    return LM_OK;
}

lm_status lm_tensor_copy_to(const lm_tensor *t, void *dst, size_t nbytes) {
    if (!t) return LM_ERR_ARG;
    if (!dst && nbytes) return lm_fail(t->ctx, LM_ERR_ARG, "tensor_copy_to: destination is NULL");
    lm_status s = check_bytes(t, nbytes, "tensor_copy_to");
    if (s) return s;
    if (!nbytes) return LM_OK;
    if (lm_tensor_is_contiguous(t))
        memcpy(dst, lm_tensor_cdata(t), nbytes);
    else
        strided_copy((lm_tensor *)t, dst, false);
    return LM_OK;
}

static bool same_shape(const lm_tensor *a, const lm_tensor *b) {
    if (a->ndim != b->ndim) return false;
    for (int i = 0; i < a->ndim; i++)
        if (a->shape[i] != b->shape[i]) return false;
    return true;
}

lm_status lm_tensor_assign(lm_tensor *dst, const lm_tensor *src) {
    if (!dst || !src) return LM_ERR_ARG;
    if (!same_shape(dst, src)) {
        char a[160], b[160];
        return lm_fail(dst->ctx, LM_ERR_SHAPE, "tensor_assign: shapes %s and %s differ",
                       lm_shape_str(lm_tensor_shape(dst), a, sizeof a),
                       lm_shape_str(lm_tensor_shape(src), b, sizeof b));
    }
    int64_t n = lm_tensor_numel(src);
    if (dst->dt == src->dt && lm_tensor_is_contiguous(dst) && lm_tensor_is_contiguous(src)) {
        if (n)
            memcpy(lm_tensor_data(dst), lm_tensor_cdata(src), (size_t)n * lm_dtype_size(dst->dt));
        return LM_OK;
    }
    for (int64_t i = 0; i < n; i++)
        store_elem(dst->buf->data, dst->dt, elem_offset(dst, i),
                   load_elem(src->buf->data, src->dt, elem_offset(src, i)));
    return LM_OK;
}

static lm_tensor *new_view(lm_tensor *t) {
    lm_tensor *v = malloc(sizeof *v);
    if (!v) {
        lm_fail(t->ctx, LM_ERR_OOM, "out of memory creating a view");
        return NULL;
    }
    *v = *t;
    t->buf->refs++;
    return v;
}

lm_tensor *lm_tensor_reshape(lm_tensor *t, lm_shape shape) {
    if (!t) return NULL;
    char a[160], b[160];
    if (shape.ndim < 0 || shape.ndim > LM_MAX_DIMS) {
        lm_fail(t->ctx, LM_ERR_SHAPE, "reshape: %d dimensions (at most %d)", shape.ndim,
                LM_MAX_DIMS);
        return NULL;
    }
    int64_t n = lm_tensor_numel(t), known = 1;
    int unknown = -1;
    for (int i = 0; i < shape.ndim; i++) {
        if (shape.dims[i] == -1 && unknown < 0)
            unknown = i;
        else if (shape.dims[i] < 0)
            goto bad;
        else
            known *= shape.dims[i];
    }
    if (unknown >= 0) {
        if (known == 0 || n % known) goto bad;
        shape.dims[unknown] = n / known;
    } else if (known != n) {
        goto bad;
    }
    lm_tensor *src = lm_tensor_contiguous(t);
    if (!src) return NULL;
    src->ndim = shape.ndim;
    memcpy(src->shape, shape.dims, sizeof src->shape);
    lm_shape_strides(src->ndim, src->shape, src->strides);
    return src;
bad:
    lm_fail(t->ctx, LM_ERR_SHAPE, "reshape: cannot reshape %s into %s",
            lm_shape_str(lm_tensor_shape(t), a, sizeof a), lm_shape_str(shape, b, sizeof b));
    return NULL;
}

lm_tensor *lm_tensor_transpose(lm_tensor *t, const int *perm) {
    if (!t) return NULL;
    if (!perm) {
        lm_fail(t->ctx, LM_ERR_ARG, "transpose: perm is NULL");
        return NULL;
    }
    bool seen[LM_MAX_DIMS] = {false};
    for (int i = 0; i < t->ndim; i++) {
        if (perm[i] < 0 || perm[i] >= t->ndim || seen[perm[i]]) {
            lm_fail(t->ctx, LM_ERR_ARG, "transpose: perm is not a permutation of %d axes", t->ndim);
            return NULL;
        }
        seen[perm[i]] = true;
    }
    lm_tensor *v = new_view(t);
    if (!v) return NULL;
    for (int i = 0; i < t->ndim; i++) {
        v->shape[i] = t->shape[perm[i]];
        v->strides[i] = t->strides[perm[i]];
    }
    return v;
}

lm_tensor *lm_tensor_slice(lm_tensor *t, int axis, int64_t start, int64_t stop, int64_t step) {
    if (!t) return NULL;
    if (axis < 0) axis += t->ndim;
    if (axis < 0 || axis >= t->ndim) {
        lm_fail(t->ctx, LM_ERR_ARG, "slice: axis out of range for %d dimensions", t->ndim);
        return NULL;
    }
    int64_t n = t->shape[axis];
    if (step <= 0 || start < 0 || stop > n || start > stop) {
        lm_fail(t->ctx, LM_ERR_ARG, "slice: [%lld:%lld:%lld] is invalid for axis %d of size %lld",
                (long long)start, (long long)stop, (long long)step, axis, (long long)n);
        return NULL;
    }
    lm_tensor *v = new_view(t);
    if (!v) return NULL;
    v->offset += start * t->strides[axis];
    v->shape[axis] = (stop - start + step - 1) / step;
    v->strides[axis] = t->strides[axis] * step;
    return v;
}

lm_tensor *lm_tensor_clone(const lm_tensor *t) {
    if (!t) return NULL;
    lm_tensor *c = lm_tensor_new(t->ctx, t->dt, lm_tensor_shape(t));
    if (!c) return NULL;
    lm_tensor_assign(c, t);
    return c;
}

lm_tensor *lm_tensor_contiguous(lm_tensor *t) {
    if (!t) return NULL;
    if (lm_tensor_is_contiguous(t)) {
        lm_tensor *v = new_view(t);
        if (v) lm_shape_strides(v->ndim, v->shape, v->strides);
        return v;
    }
    return lm_tensor_clone(t);
}

lm_tensor *lm_tensor_cast(const lm_tensor *t, lm_dtype dt) {
    if (!t) return NULL;
    lm_tensor *c = lm_tensor_new(t->ctx, dt, lm_tensor_shape(t));
    if (!c) return NULL;
    lm_tensor_assign(c, t);
    return c;
}

static lm_status check_float(const lm_tensor *t, const char *fn) {
    if (!t) return LM_ERR_ARG;
    if (t->dt != LM_F32 && t->dt != LM_F64)
        return lm_fail(t->ctx, LM_ERR_DTYPE, "%s: needs a float tensor, got %s", fn,
                       lm_dtype_name(t->dt));
    return LM_OK;
}

lm_status lm_tensor_random_uniform(lm_tensor *t, double lo, double hi) {
    lm_status s = check_float(t, "random_uniform");
    if (s) return s;
    if (!(hi >= lo)) return lm_fail(t->ctx, LM_ERR_ARG, "random_uniform: hi %g < lo %g", hi, lo);
    int64_t n = lm_tensor_numel(t);
    for (int64_t i = 0; i < n; i++)
        store_elem(t->buf->data, t->dt, elem_offset(t, i),
                   lo + (hi - lo) * lm_rng_uniform_d(&t->ctx->rng));
    return LM_OK;
}

lm_status lm_tensor_random_normal(lm_tensor *t, double mean, double stddev) {
    lm_status s = check_float(t, "random_normal");
    if (s) return s;
    if (!(stddev >= 0)) return lm_fail(t->ctx, LM_ERR_ARG, "random_normal: stddev %g < 0", stddev);
    int64_t n = lm_tensor_numel(t);
    for (int64_t i = 0; i < n; i++)
        store_elem(t->buf->data, t->dt, elem_offset(t, i),
                   mean + stddev * lm_rng_normal(&t->ctx->rng));
    return LM_OK;
}

lm_status lm_tensor_random_truncated_normal(lm_tensor *t, double mean, double stddev) {
    lm_status s = check_float(t, "random_truncated_normal");
    if (s) return s;
    if (!(stddev >= 0))
        return lm_fail(t->ctx, LM_ERR_ARG, "random_truncated_normal: stddev %g < 0", stddev);
    int64_t n = lm_tensor_numel(t);
    for (int64_t i = 0; i < n; i++) {
        double z;
        do z = lm_rng_normal(&t->ctx->rng);
        while (fabs(z) > 2.0);
        store_elem(t->buf->data, t->dt, elem_offset(t, i), mean + stddev * z);
    }
    return LM_OK;
}
