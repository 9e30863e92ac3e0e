/* Shared by norm.c (forward ops) and norm_grad.c (backward-only ops). */
#ifndef LM_NORM_IMPL_H
#define LM_NORM_IMPL_H

#include "ops/op.h"

/* p.kind bits of batch_norm, layer_norm and their gradients: optional inputs present. */
enum { NORM_GAMMA = 1, NORM_BETA = 2 };
/* p.kind of norm_param_grad: which forward op saved the statistics. */
enum { NORM_KIND_BATCH = 0, NORM_KIND_LAYER = 1 };

/* Below NORM_PAR_MIN elements a kernel stays on one thread. */
#define NORM_PAR_MIN 32768

/* Size of the last axis, and the number of rows before it. */
static inline int64_t norm_channels(const lm_tv *t) {
    return t->ndim ? t->d[t->ndim - 1] : 1;
}
static inline int64_t norm_rows(const lm_tv *t) {
    int64_t r = 1;
    for (int i = 0; i + 1 < t->ndim; i++) r *= t->d[i];
    return r;
}

/* Tiles of a reduction over rows (per-channel sums): nch row chunks, each
 * keeping 2 * C partial sums in double, times ncb blocks of cbw channels.
 * Chunks read whole rows where possible (contiguous streams); channel blocks
 * only make up for too few chunks when rows are few. The tiling depends on
 * the shape alone, never on the thread count, so sums are the same on any
 * machine. With 16+ rows a chunk, the partial sums are at most 1/4 of the
 * input's size and adding them up costs little next to the pass itself. */
typedef struct norm_tiles {
    int64_t nch, ncb, cbw;
} norm_tiles;

static inline norm_tiles norm_tiling(int64_t rows, int64_t C) {
    norm_tiles t = {1, 1, C};
    if (rows * C < NORM_PAR_MIN) return t;
    t.nch = rows / 16 < 1 ? 1 : rows / 16 > 64 ? 64 : rows / 16;
    if (t.nch < 16) {
        int64_t want = 64 / t.nch, most = (C + 1023) / 1024;
        t.ncb = want < most ? want : most;
        t.cbw = ((C + t.ncb - 1) / t.ncb + 15) / 16 * 16;
        t.ncb = (C + t.cbw - 1) / t.cbw;
    }
    return t;
}

#endif
