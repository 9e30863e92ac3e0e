/* The update rules' inner loops, fused over one block of the flat parameter
 * vector: clip the gradient (scale, then clamp), decay the weight, update the
 * slots and the weight. Each line mirrors the float32 operation order of
 * Keras 3's update_step so results agree to rounding.
 *
 * Included by rules.c (portable), rules_avx2.c and rules_avx512.c, which
 * compile the same loops for wider vectors; the CPU found at run time picks
 * one table. A block of BLK elements stays in L1: one loop updates the slots
 * and gathers the square-root arguments, a second takes the roots (vsqrtps:
 * the library builds with -fno-math-errno), a third updates the weights.
 * Contraction into FMA is off so every ISA rounds alike. */
#ifndef LM_OPTIM_RULES_IMPL_H
#define LM_OPTIM_RULES_IMPL_H

#include <math.h>
#include "optim/rules.h"

#ifdef __clang__ /* gcc does not contract in ISO C mode (-std=c11) */
#pragma STDC FP_CONTRACT OFF
#endif

#define BLK LM_RULE_BLK

/* Gradient after clipnorm/global_clipnorm scaling and clipvalue. The
 * comparisons keep NaN as NaN, as jnp.clip does. */
static inline float clip_g(float g, const lm_opt_step *s) {
    g *= s->gscale;
    return g > s->clipvalue ? s->clipvalue : (g < -s->clipvalue ? -s->clipvalue : g);
}

/* Keras's _apply_weight_decay: variable - variable * wd * lr. */
static inline float decay_w(float w, const lm_opt_step *s) {
    return s->has_wd ? w - w * s->wd * s->lr : w;
}

/* ---- SGD: m = m * momentum - g * lr; w += m (nesterov: w += m * momentum - g * lr) ---- */

static void sgd_block(const lm_optimizer *o, const lm_opt_step *s, const lm_rule_ptrs *p,
                      int64_t lo, int nb) {
    float *restrict w = p->w + lo;
    const float *restrict gr = p->g + lo;
    const float lr = s->lr, mom = s->momentum;
    if (!p->s0) {
        for (int j = 0; j < nb; j++) w[j] = decay_w(w[j], s) - clip_g(gr[j], s) * lr;
        return;
    }
    float *restrict m = p->s0 + lo;
    if (o->nesterov) {
        for (int j = 0; j < nb; j++) {
            float gl = clip_g(gr[j], s) * lr;
            float mj = m[j] * mom - gl;
            m[j] = mj;
            w[j] = decay_w(w[j], s) + (mj * mom - gl);
        }
    } else {
        for (int j = 0; j < nb; j++) {
            float mj = m[j] * mom - clip_g(gr[j], s) * lr;
            m[j] = mj;
            w[j] = decay_w(w[j], s) + mj;
        }
    }
}

/* ---- Adam: m += (g - m)(1 - b1); v += (g^2 - v)(1 - b2); [vhat = max(vhat, v)];
 *      w -= m * alpha / (sqrt(v) + eps) ---- */

static void adam_block(const lm_optimizer *o, const lm_opt_step *s, const lm_rule_ptrs *p,
                       int64_t lo, int nb) {
    float *restrict w = p->w + lo;
    const float *restrict gr = p->g + lo;
    float *restrict m = p->s0 + lo;
    float *restrict v = p->s1 + lo;
    const float alpha = s->alpha, c1 = s->one_m_b1, c2 = s->one_m_b2, eps = s->epsilon;
    float d[BLK];
    for (int j = 0; j < nb; j++) {
        float g = clip_g(gr[j], s);
        m[j] = m[j] + (g - m[j]) * c1;
        float vj = v[j] + (g * g - v[j]) * c2;
        v[j] = vj;
        d[j] = vj;
    }
    if (o->amsgrad) {
        float *restrict vh = p->s2 + lo;
        for (int j = 0; j < nb; j++) {
            float h = vh[j] >= d[j] ? vh[j] : d[j]; /* NaN in v propagates, as jnp.maximum */
            vh[j] = h;
            d[j] = h;
        }
    }
    for (int j = 0; j < nb; j++) d[j] = sqrtf(d[j]);
    for (int j = 0; j < nb; j++) w[j] = decay_w(w[j], s) - (m[j] * alpha) / (d[j] + eps);
}

/* ---- RMSprop: v = rho v + (1 - rho) g^2; [a = rho a + (1 - rho) g];
 *      inc = lr g / sqrt(v [- a^2] + eps); [mo = momentum mo + inc; inc = mo]; w -= inc ---- */

static void rmsprop_block(const lm_optimizer *o, const lm_opt_step *s, const lm_rule_ptrs *p,
                          int64_t lo, int nb) {
    float *restrict w = p->w + lo;
    const float *restrict gr = p->g + lo;
    float *restrict vel = p->s0 + lo;
    /* Slots in Keras's creation order: velocity, [momentum], [average_gradient]. */
    const bool has_mom = o->momentum > 0;
    const float lr = s->lr, rho = s->rho, omr = s->one_m_rho, eps = s->epsilon;
    const float mom = s->momentum;
    float d[BLK];
    if (o->centered) {
        float *restrict ag = (has_mom ? p->s2 : p->s1) + lo;
        for (int j = 0; j < nb; j++) {
            float g = clip_g(gr[j], s);
            float vj = rho * vel[j] + omr * (g * g);
            float aj = rho * ag[j] + omr * g;
            vel[j] = vj;
            ag[j] = aj;
            d[j] = vj - aj * aj + eps;
        }
    } else {
        for (int j = 0; j < nb; j++) {
            float g = clip_g(gr[j], s);
            float vj = rho * vel[j] + omr * (g * g);
            vel[j] = vj;
            d[j] = vj + eps;
        }
    }
    for (int j = 0; j < nb; j++) d[j] = sqrtf(d[j]);
    if (has_mom) {
        float *restrict mo = p->s1 + lo;
        for (int j = 0; j < nb; j++) {
            float mj = mom * mo[j] + (lr * clip_g(gr[j], s)) / d[j];
            mo[j] = mj;
            w[j] = decay_w(w[j], s) - mj;
        }
    } else {
        for (int j = 0; j < nb; j++) w[j] = decay_w(w[j], s) - (lr * clip_g(gr[j], s)) / d[j];
    }
}

/* ---- Adagrad: acc += g^2; w -= lr g / sqrt(acc + eps) ---- */

static void adagrad_block(const lm_optimizer *o, const lm_opt_step *s, const lm_rule_ptrs *p,
                          int64_t lo, int nb) {
    (void)o;
    float *restrict w = p->w + lo;
    const float *restrict gr = p->g + lo;
    float *restrict acc = p->s0 + lo;
    const float lr = s->lr, eps = s->epsilon;
    float d[BLK];
    for (int j = 0; j < nb; j++) {
        float g = clip_g(gr[j], s);
        float aj = acc[j] + g * g;
        acc[j] = aj;
        d[j] = aj + eps;
    }
    for (int j = 0; j < nb; j++) d[j] = sqrtf(d[j]);
    for (int j = 0; j < nb; j++) w[j] = decay_w(w[j], s) - (lr * clip_g(gr[j], s)) / d[j];
}

#define LM_RULE_BLOCKS_TABLE                                                                       \
    { .sgd = sgd_block, .adam = adam_block, .rmsprop = rmsprop_block, .adagrad = adagrad_block }

#endif
