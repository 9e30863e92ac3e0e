/* Interface between the elementwise ops (elementwise.c, unary.c) and their
 * loops (elementwise_kern.h), which are compiled once per ISA: portable C in
 * unary.c, and the same C built with AVX2 or AVX-512 flags so that gcc
 * vectorises the math (exp, tanh, erf...) at full width. */
#ifndef LM_ELEMENTWISE_H
#define LM_ELEMENTWISE_H

#include "ops/op.h"

typedef struct lm_elem_kernels {
    /* For rows r: y[r * n + i] = a[r * ra + i * sa] op b[r * rb + i * sb], op add ...
     * minimum; sa and sb are 0 or 1. */
    void (*binary)(int op, int64_t rows, int64_t n, const float *a, int64_t ra, int64_t sa,
                   const float *b, int64_t rb, int64_t sb, float *y);
    /* The same rows of gy[r * n + i] times the derivative of op (div, maximum,
     * minimum) with respect to input `which`. */
    void (*binary_grad)(int op, int which, int64_t rows, int64_t n, const float *gy, const float *a,
                        int64_t ra, int64_t sa, const float *b, int64_t rb, int64_t sb, float *y);
    /* y = op(x) for a unary op or activation, with its params. */
    void (*unary)(int op, const lm_params *p, int64_t n, const float *x, float *y);
    /* y = gy * op'(.), from t = the op's input, or its output where
     * lm_unary_grad_uses_output(op). */
    void (*unary_grad)(int op, const lm_params *p, int64_t n, const float *gy, const float *t,
                       float *y);
} lm_elem_kernels;

/* Members are NULL when the file was built without its ISA flags. */
extern const lm_elem_kernels lm_elem_kernels_generic;
extern const lm_elem_kernels lm_elem_kernels_avx2;
extern const lm_elem_kernels lm_elem_kernels_avx512;

/* The best kernel set for isa that was compiled in. */
const lm_elem_kernels *lm_elem_kernels_for(lm_isa isa);

/* True when the derivative of a unary op is computed from its output
 * (relu, sigmoid, tanh, exp, sqrt): the input may then die after the
 * forward pass. */
bool lm_unary_grad_uses_output(int op);

/* Elements per kernel call; parallel loops split work into such chunks. */
#define LM_ELEM_CHUNK 16384

#endif
