/* The update rules, fused over a range of the flat parameter vector: clip
 * the gradient (scale, then clamp), decay the weight, update the slots and
 * the weight. Each line mirrors the float32 operation order of Keras 3's
 * update_step so results agree to rounding.
 *
 * The range is cut into blocks of BLK elements that stay in L1: within a
 * block, one loop updates the slots and gathers the sqrt arguments, a second
 * takes their square roots, a third updates the weights. sqrtf may set errno
 * (a branch that stops auto-vectorisation without -fno-math-errno), so the
 * roots go through SSE's sqrtps, which rounds identically; the other loops
 * are branch-free and vectorise. Blocks are shared among threads only for
 * long ranges. */
#include <math.h>
#include "optim/rules.h"
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#define BLK 256

/* Pointers of the range being updated (params, grads, up to three slots). */
typedef struct rule_ptrs {
    float *w;
    const float *g;
    float *s0, *s1, *s2;
} rule_ptrs;

typedef void (*block_fn)(const lm_optimizer *o, const lm_opt_step *s, const rule_ptrs *p,
                         int64_t lo, int nb);

static void run_blocks(block_fn f, const lm_optimizer *o, const lm_opt_step *s, const rule_ptrs *p,
                       int64_t n) {
    const int64_t nblk = (n + BLK - 1) / BLK;
    const int nt = s->nthreads;
    (void)nt; /* unused without OpenMP */
#pragma omp parallel for num_threads(nt) if (nt > 1 && n > LM_OPT_PAR_MIN) schedule(static)
    for (int64_t b = 0; b < nblk; b++) f(o, s, p, b * BLK, (int)lm_min64(BLK, n - b * BLK));
}

static void sqrt_block(float *d, int n) {
    int j = 0;
#if defined(__SSE2__)
    for (; j + 4 <= n; j += 4) _mm_storeu_ps(d + j, _mm_sqrt_ps(_mm_loadu_ps(d + j)));
#endif
    for (; j < n; j++) d[j] = sqrtf(d[j]);
}

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

static rule_ptrs ptrs(lm_optimizer *o, float *params, const float *grads, int64_t off) {
    /* An empty parameter vector has NULL buffers; NULL + 0 is still undefined in C. */
    rule_ptrs p = {NULL, NULL, NULL, NULL, NULL};
    if (!params || !grads) return p;
    p.w = params + off;
    p.g = grads + off;
    float **sl[3] = {&p.s0, &p.s1, &p.s2};
    for (int k = 0; k < o->n_slots && k < 3; k++)
        if (o->slot[k]) *sl[k] = o->slot[k] + off;
    return p;
}

/* ---- SGD: m = m * momentum - g * lr; w += m (nesterov: w += m * momentum - g * lr) ---- */

static void sgd_block(const lm_optimizer *o, const lm_opt_step *s, const rule_ptrs *p, int64_t lo,
                      int nb) {
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

void lm_rule_sgd(lm_optimizer *o, const lm_opt_step *s, float *params, const float *grads,
                 int64_t off, int64_t n) {
    rule_ptrs p = ptrs(o, params, grads, off);
    run_blocks(sgd_block, o, s, &p, n);
}

/* ---- Adam: m += (g - m)(1 - b1); v += (g^2 - v)(1 - b2); [vhat = max(vhat, v)];
 *      w -= m * alpha / (sqrt(v) + eps) ---- */

static void adam_block(const lm_optimizer *o, const lm_opt_step *s, const rule_ptrs *p, int64_t lo,
                       int nb) {
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
    sqrt_block(d, nb);
    for (int j = 0; j < nb; j++) w[j] = decay_w(w[j], s) - (m[j] * alpha) / (d[j] + eps);
}

void lm_rule_adam(lm_optimizer *o, const lm_opt_step *s, float *params, const float *grads,
                  int64_t off, int64_t n) {
    rule_ptrs p = ptrs(o, params, grads, off);
    run_blocks(adam_block, o, s, &p, n);
}

/* ---- RMSprop: v = rho v + (1 - rho) g^2; [a = rho a + (1 - rho) g];
 *      inc = lr g / sqrt(v [- a^2] + eps); [mo = momentum mo + inc; inc = mo]; w -= inc ---- */

static void rmsprop_block(const lm_optimizer *o, const lm_opt_step *s, const rule_ptrs *p,
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
    sqrt_block(d, nb);
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

void lm_rule_rmsprop(lm_optimizer *o, const lm_opt_step *s, float *params, const float *grads,
                     int64_t off, int64_t n) {
    rule_ptrs p = ptrs(o, params, grads, off);
    run_blocks(rmsprop_block, o, s, &p, n);
}

/* ---- Adagrad: acc += g^2; w -= lr g / sqrt(acc + eps) ---- */

static void adagrad_block(const lm_optimizer *o, const lm_opt_step *s, const rule_ptrs *p,
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
    sqrt_block(d, nb);
    for (int j = 0; j < nb; j++) w[j] = decay_w(w[j], s) - (lr * clip_g(gr[j], s)) / d[j];
}

void lm_rule_adagrad(lm_optimizer *o, const lm_opt_step *s, float *params, const float *grads,
                     int64_t off, int64_t n) {
    rule_ptrs p = ptrs(o, params, grads, off);
    run_blocks(adagrad_block, o, s, &p, n);
}

/* ---- norms ---- */

/* Eight double lanes so the reduction vectorises without reassociation
 * flags; chunks of 4096 give threads work of equal size. */
static double sumsq_serial(const float *restrict g, int64_t n) {
    double a[8] = {0};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int k = 0; k < 8; k++) a[k] += (double)g[i + k] * (double)g[i + k];
    for (; i < n; i++) a[0] += (double)g[i] * (double)g[i];
    return ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));
}

double lm_opt_sumsq(const float *g, int64_t n, int nthreads) {
    if (nthreads <= 1 || n <= LM_OPT_PAR_MIN) return sumsq_serial(g, n);
    const int64_t chunk = 4096, nch = (n + chunk - 1) / chunk;
    double total = 0;
#pragma omp parallel for num_threads(nthreads) reduction(+ : total) schedule(static)
    for (int64_t c = 0; c < nch; c++)
        total += sumsq_serial(g + c * chunk, lm_min64(chunk, n - c * chunk));
    return total;
}
