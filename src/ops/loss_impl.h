/* Helpers shared by the loss forward ops (loss.c) and their backward ops
 * (loss_grad.c). */
#ifndef LM_LOSS_IMPL_H
#define LM_LOSS_IMPL_H

#include "graph/graph_impl.h"
#include "ops/reduce_vmath.h"
#include <math.h>

/* Keras's backend.epsilon() and the clip bounds of probabilities, rounded to
 * float32 as jnp.clip rounds them. */
#define LM_LOSS_LO 1e-7f
#define LM_LOSS_HI ((float)(1.0 - 1e-7))

/* clip(p, lo, hi) as an integer min/max on the bits (positive floats order
 * like their bits, negative ones fall below lo's): float selects against
 * constants let the compiler branch to a constant-folded path, which keeps
 * the loop scalar. NaN passes through as in jnp.clip. */
static inline float lm_clip_prob(float p) {
    int32_t b = lm_f_bits(p), lo = lm_f_bits(LM_LOSS_LO), hi = lm_f_bits(LM_LOSS_HI);
    b = b < lo ? lo : b;
    b = b > hi ? hi : b;
    return lm_vsel(p != p, p, lm_bits_f(b));
}

/* Derivative of jnp.clip (maximum then minimum, each passing half at a tie). */
static inline float lm_clip_pass(float p) {
    float a = (float)(p > LM_LOSS_LO) + 0.5f * (float)(p == LM_LOSS_LO);
    float b = (float)(p < LM_LOSS_HI) + 0.5f * (float)(p == LM_LOSS_HI);
    return a * b;
}

/* Per-row statistics kept in a categorical loss's aux: [max, log-sum-exp]
 * of the logits, or [sum, unused] of the probabilities. */
#define LM_LOSS_AUX_PER_ROW 2

/* The common shape S of y_true (in[0]) and y_pred (in[1]) after Keras's
 * squeeze_or_expand_to_same_rank; the loss reduces S's last axis. */
lm_status lm_loss_shape(lm_infer *s, lm_shape *S);
/* Checks the class-index dtype and shape of sparse_categorical_crossentropy. */
lm_status lm_sparse_label_shape(lm_infer *s);
/* Class index of row r truncated as Keras's cast to int32; false when
 * outside [0, D) (then *out is the offending value, INT64_MIN for NaN). */
bool lm_read_label(const lm_tv *t, int64_t r, int64_t D, int64_t *out);
/* Run-time check of every class index, failing with a message naming the
 * sample, the index and y_pred's shape. */
lm_status lm_check_labels(lm_kcall *c, const lm_tv *t, int64_t rows, int64_t D);

#endif
