/* The op registry: one row (lm_op_def) per op, holding its name, shape and
 * dtype rule, kernels per backend and backward rule. Rows live with their op
 * family in src/ops/<family>.c; src/ops/registry.c collects them. */
#ifndef LM_OP_H
#define LM_OP_H

#include <stdbool.h>
#include <stddef.h>
#include <string.h>
#include "core/core.h"
#include "lamina/ops.h"

/* Op ids come from the per-family lists. */
typedef enum lm_op_id {
#define LM_OPDEF(ID, name) LM_OP_##ID,
#include "ops/op_list.h"
#undef LM_OPDEF
    LM_OP_COUNT
} lm_op_id;

typedef enum lm_backend { LM_BACKEND_CPU = 0, LM_BACKEND_CUDA = 1, LM_BACKEND_COUNT } lm_backend;

/* Op parameters stored inline in the node. Each op documents which fields it
 * reads; unused fields stay zero. */
typedef struct lm_params {
    int axis;
    int naxes;
    int axes[LM_MAX_DIMS];
    bool keepdims;
    bool ta, tb; /* matmul transposes */
    bool flag;   /* from_logits, approximate, ... */
    int act;     /* lm_activation, or another per-op selector */
    int kind;    /* per-op sub-kind */
    float f[4];  /* scalar parameters: alpha, p, lo/hi, scale/shift, delta, rate, eps... */
    int indim;   /* reshape target rank */
    int64_t ishape[LM_MAX_DIMS]; /* reshape target; gather/one_hot extras */
    int perm[LM_MAX_DIMS];
    int64_t begin[LM_MAX_DIMS]; /* slice begin, pad before */
    int64_t size[LM_MAX_DIMS];  /* slice size, pad after */
    int depth;
    lm_dtype dt;
    lm_conv_opts conv;
    lm_pool_opts pool;
    lm_rnn_opts rnn;
    uint64_t seed;
} lm_params;

/* A contiguous tensor as kernels see it. */
typedef struct lm_tv {
    void *p;
    lm_dtype dt;
    int ndim;
    int64_t d[LM_MAX_DIMS];
    int64_t n; /* number of elements */
} lm_tv;

/* What a run gives every kernel. */
typedef struct lm_kenv {
    lm_ctx *ctx;
    lm_gemm *gemm;
    lm_isa isa;
    int nthreads;
    bool training;
    uint64_t step; /* completed runs of the session */
} lm_kenv;

/* One node's kernel invocation, prepared when the session plans memory. */
typedef struct lm_kcall {
    const struct lm_node *node;
    const lm_params *p;
    const lm_kenv *env;
    int n_in;
    lm_tv in[8];
    void *in_aux[8]; /* aux memory of each input node (a forward node's saved state) */
    lm_tv out;
    void *aux; /* kept alive with the output: state the backward kernel reads */
    size_t aux_bytes;
    void *ws; /* scratch for this kernel only */
    size_t ws_bytes;
} lm_kcall;

typedef lm_status (*lm_kernel_fn)(lm_kcall *c);

/* Shape inference, at build time (dims may be -1) and again at plan time
 * with concrete shapes. Sets out and out_dt or fails through lm_infer_fail. */
typedef struct lm_infer {
    const struct lm_node *node;
    const lm_params *p;
    int n_in;
    lm_shape in[8];
    lm_dtype in_dt[8];
    lm_shape out;
    lm_dtype out_dt;
    const char *op_name;
    char *err;
    size_t errlen;
} lm_infer;

enum {
    LM_OPF_SOURCE = 1u << 0,    /* placeholder, variable, constant: no kernel */
    LM_OPF_ALIAS = 1u << 1,     /* output shares input 0's memory (reshape) */
    LM_OPF_NONDIFF = 1u << 2,   /* no gradient flows through it (argmax, one_hot) */
    LM_OPF_GRAD_ONLY = 1u << 3, /* a backward helper, checked through its forward op */
    LM_OPF_INPLACE = 1u << 4    /* may write its output over input 0 when input 0 dies here */
};

typedef struct lm_op_def {
    const char *name;
    int min_in, max_in;
    unsigned flags;
    lm_status (*infer)(lm_infer *s);
    size_t (*aux_bytes)(const lm_kcall *c); /* NULL: none */
    size_t (*ws_bytes)(const lm_kcall *c);  /* NULL: none */
    lm_kernel_fn kernel[LM_BACKEND_COUNT];  /* NULL for CUDA falls back to the CPU */
    /* Backward rule written with graph ops: given the node and the gradient
     * gy of its output, sets gx[i] for each input (NULL: no gradient). */
    lm_status (*grad)(lm_graph *g, lm_node *n, lm_node *gy, lm_node **gx);
} lm_op_def;

/* The row of an op id. */
const lm_op_def *lm_op_get(int op);

/* Records "<scope/op>: <message>" as the inference error and returns s. */
lm_status lm_infer_fail(lm_infer *s, lm_status st, const char *fmt, ...) LM_PRINTF(3, 4);
/* Records a kernel-time error naming the node, returns s. */
lm_status lm_kernel_fail(lm_kcall *c, lm_status st, const char *fmt, ...) LM_PRINTF(3, 4);

/* Shape helpers for inference rules. */
/* NumPy broadcast of a and b (-1 dims treated as unknown); fails with both shapes named. */
lm_status lm_infer_broadcast(lm_infer *s, lm_shape a, lm_shape b, lm_shape *out);
/* Normalises a possibly negative axis against ndim; fails if out of range. */
lm_status lm_infer_axis(lm_infer *s, int axis, int ndim, int *out);
/* Writes "(2, 3)" style text into buf and returns it (for messages). */
const char *lm_shp(lm_shape s, char buf[static 96]);

/* Static param initialiser. */
static inline lm_params lm_params_zero(void) {
    lm_params p;
    memset(&p, 0, sizeof p);
    return p;
}

/* Elements of a kernel tensor as float. */
static inline float *lm_f(const lm_tv *t) {
    return (float *)t->p;
}

#endif
