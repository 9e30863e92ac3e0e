/* Convolution passes on im2col tiles and the packed GEMM.
 *
 * The output pixels (flattened over N, OH, OW) are cut into tiles whose
 * im2col rows fit in L2; a thread builds a tile into its workspace slice and
 * multiplies it at once, so the column matrix is never materialised for the
 * whole batch. Threads take whole tiles (GEMMs called from inside the team
 * run on the calling thread). Filter gradients accumulate per thread and are
 * summed at the end; input gradients give each thread whole images, so the
 * col2im scatter never races. */
#include "cpu/im2col.h"
#include "core/core.h"
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#define COL_TILE_FLOATS (1 << 16) /* 256 KB of im2col rows per tile */

int64_t lm_conv_out_size(int64_t in, int64_t k, int64_t s, int64_t d, int pad, int64_t *before) {
    *before = 0;
    if (in < 0) return -1;
    int64_t ek = (k - 1) * d + 1;
    if (pad == 1) { /* same: ceil(in / s), TensorFlow's split (extra after) */
        int64_t out = (in + s - 1) / s, total = (out - 1) * s + ek - in;
        *before = total > 0 ? total / 2 : 0;
        return out;
    }
    if (pad == 2) { /* causal: everything before */
        *before = ek - 1;
        return in == 0 ? 0 : (in - 1) / s + 1;
    }
    return in < ek ? -2 : (in - ek) / s + 1;
}

static int thread_id(void) {
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

static int team_size(void) {
#ifdef _OPENMP
    return omp_get_num_threads();
#else
    return 1;
#endif
}

/* A barrier of the enclosing team (none outside a parallel region). */
static void team_barrier(void) {
#pragma omp barrier
}

/* A 1x1 kernel with unit strides and no padding: x itself is the column matrix. */
static bool pointwise(const lm_conv_geom *g) {
    return g->KH == 1 && g->KW == 1 && g->sh == 1 && g->sw == 1 && g->pt == 0 && g->pl == 0 &&
           g->G == 1 && g->OH == g->H && g->OW == g->W;
}

/* Rows per tile: at most about COL_TILE_FLOATS of columns, and a number of
 * tiles that is a multiple of the thread count, so that threads get equal
 * shares. Never more than with one thread (which sizes the workspace). */
/* Largest tile for P pixels (or any part of them): the workspace slice of a thread. */
static int64_t tile_cap(const lm_conv_geom *g, int64_t P) {
    int64_t K = lm_conv_k(g), t = K > 0 ? COL_TILE_FLOATS / K : P;
    if (t < 32) t = 32;
    return t < P ? t : P > 0 ? P : 1;
}

static int64_t tile_rows(const lm_conv_geom *g, int64_t P, int nt) {
    int64_t K = lm_conv_k(g), t = K > 0 ? COL_TILE_FLOATS / K : P;
    if (t < 32) t = 32;
    if (P <= 0) return 1;
    int64_t n = (P + t - 1) / t;
    if (nt > 1) n = (n + nt - 1) / nt * nt;
    return (P + n - 1) / n;
}

void lm_im2col(const lm_conv_geom *g, const float *x, int64_t grp, int64_t p0, int64_t p1,
               float *col) {
    const int64_t K = lm_conv_k(g), CG = g->CG, C = g->C, W = g->W, KW = g->KW;
    const bool rowcopy = g->dw == 1 && g->G == 1; /* a window row is contiguous in x */
    int64_t ow = p0 % g->OW, t = p0 / g->OW, oh = t % g->OH, n = t / g->OH;
    for (int64_t p = p0; p < p1; p++) {
        float *row = col + (p - p0) * K;
        const float *xn = x + n * g->H * W * C + grp * CG;
        const int64_t ih0 = oh * g->sh - g->pt, iw0 = ow * g->sw - g->pl;
        for (int64_t kh = 0; kh < g->KH; kh++) {
            const int64_t ih = ih0 + kh * g->dh;
            float *r = row + kh * KW * CG;
            if (ih < 0 || ih >= g->H) {
                memset(r, 0, (size_t)(KW * CG) * sizeof *r);
                continue;
            }
            const float *xr = xn + ih * W * C;
            if (rowcopy && iw0 >= 0 && iw0 + KW <= W) {
                memcpy(r, xr + iw0 * C, (size_t)(KW * C) * sizeof *r);
                continue;
            }
            for (int64_t kw = 0; kw < KW; kw++, r += CG) {
                const int64_t iw = iw0 + kw * g->dw;
                if (iw < 0 || iw >= W) {
                    for (int64_t c = 0; c < CG; c++) r[c] = 0.0f;
                } else {
                    const float *xs = xr + iw * C;
                    for (int64_t c = 0; c < CG; c++) r[c] = xs[c];
                }
            }
        }
        if (++ow == g->OW) {
            ow = 0;
            if (++oh == g->OH) oh = 0, n++;
        }
    }
}

void lm_col2im(const lm_conv_geom *g, const float *col, int64_t grp, int64_t p0, int64_t p1,
               float *dx) {
    const int64_t K = lm_conv_k(g), CG = g->CG, C = g->C, W = g->W, KW = g->KW;
    int64_t ow = p0 % g->OW, t = p0 / g->OW, oh = t % g->OH, n = t / g->OH;
    for (int64_t p = p0; p < p1; p++) {
        const float *row = col + (p - p0) * K;
        float *xn = dx + n * g->H * W * C + grp * CG;
        const int64_t ih0 = oh * g->sh - g->pt, iw0 = ow * g->sw - g->pl;
        for (int64_t kh = 0; kh < g->KH; kh++) {
            const int64_t ih = ih0 + kh * g->dh;
            if (ih < 0 || ih >= g->H) continue;
            const float *r = row + kh * KW * CG;
            float *xr = xn + ih * W * C;
            for (int64_t kw = 0; kw < KW; kw++, r += CG) {
                const int64_t iw = iw0 + kw * g->dw;
                if (iw < 0 || iw >= W) continue;
                float *restrict xs = xr + iw * C;
                for (int64_t c = 0; c < CG; c++) xs[c] += r[c];
            }
        }
        if (++ow == g->OW) {
            ow = 0;
            if (++oh == g->OH) oh = 0, n++;
        }
    }
}

/* ---- forward ---- */

size_t lm_conv_fwd_ws(const lm_conv_geom *g, int nt, lm_isa isa) {
    (void)isa; /* the GEMM path stays possible whatever kernel set is chosen later */
    if (pointwise(g)) return 0;
    int64_t P = g->N * g->OH * g->OW;
    return (size_t)nt * (size_t)(tile_cap(g, P) * lm_conv_k(g)) * sizeof(float);
}

/* Direct kernel when the window is small enough to stay in registers and
 * L1 (one input channel or a few), where im2col would only add traffic. */
static bool direct_ok(const lm_conv_geom *g, lm_isa isa) {
    return isa >= LM_ISA_AVX512 && g->G == 1 && lm_conv_k(g) <= LM_CONV_DIRECT_MAXK && g->O <= 256;
}

void lm_conv_fwd(const lm_conv_geom *g, const float *x, const float *w, float *y, lm_gemm *gemm,
                 int nt, lm_isa isa, void *ws) {
    const int64_t P = g->N * g->OH * g->OW, K = lm_conv_k(g), O = g->O;
    if (P == 0 || O == 0) return;
    lm_gemm_epilogue ep = {g->bias, g->relu ? LM_GEMM_RELU : LM_GEMM_LINEAR};
    if (pointwise(g)) {
        lm_sgemm(gemm, nt, false, false, P, O, K, 1.0f, x, K, w, O, 0.0f, y, O, &ep);
        return;
    }
    if (K == 0) {
        for (int64_t p = 0; p < P; p++)
            for (int64_t o = 0; o < O; o++) {
                float v = g->bias ? g->bias[o] : 0.0f;
                y[p * O + o] = g->relu && v < 0 ? 0.0f : v;
            }
        return;
    }
    if (direct_ok(g, isa)) {
        /* Pixels split evenly; tiny problems stay on one thread. */
        int nd = P * K * O < (1 << 15) ? 1 : nt;
        LM_PARALLEL(nd > 1, nd, {
            int t = thread_id(), T = team_size();
            int64_t a = P * t / T, b = P * (t + 1) / T;
            lm_conv_direct_avx512(g, x, w, y, a, b);
        });
        return;
    }
    const int64_t T = tile_rows(g, P, nt), ntiles = (P + T - 1) / T;
    int nth = ntiles < nt ? (int)ntiles : nt;
    LM_PAR_FOR(nth > 1, nth, i, ntiles, {
        float *col = (float *)ws + (size_t)thread_id() * (size_t)(tile_cap(g, P) * K);
        int64_t p0 = i * T, p1 = p0 + T < P ? p0 + T : P;
        for (int64_t grp = 0; grp < g->G; grp++) {
            lm_gemm_epilogue eg = {g->bias ? g->bias + grp * g->OG : NULL, ep.act};
            lm_im2col(g, x, grp, p0, p1, col);
            lm_sgemm(gemm, 1, false, false, p1 - p0, g->OG, K, 1.0f, col, K, w + grp * g->OG, O,
                     0.0f, y + p0 * O + grp * g->OG, O, &eg);
        }
    });
}

/* ---- input gradient ---- */

size_t lm_conv_bwd_input_ws(const lm_conv_geom *g, int nt) {
    if (pointwise(g)) return 0;
    int64_t P = g->N * g->OH * g->OW;
    return (size_t)nt * (size_t)(tile_cap(g, P) * lm_conv_k(g)) * sizeof(float);
}

/* dx for images [n0, n1), tiles of T rows, GEMMs on gnt threads. */
static void bwd_input_images(const lm_conv_geom *g, const float *dy, const float *w, float *dx,
                             lm_gemm *gemm, int gnt, float *col, int64_t n0, int64_t n1,
                             int64_t T) {
    const int64_t K = lm_conv_k(g), O = g->O, per = g->OH * g->OW;
    const int64_t img = g->H * g->W * g->C;
    memset(dx + n0 * img, 0, (size_t)((n1 - n0) * img) * sizeof *dx);
    for (int64_t p0 = n0 * per; p0 < n1 * per; p0 += T) {
        int64_t p1 = p0 + T < n1 * per ? p0 + T : n1 * per;
        for (int64_t grp = 0; grp < g->G; grp++) {
            /* col (rows x K) = dy_tile (rows x OG) @ w_grp^T, w_grp being K x OG. */
            lm_sgemm(gemm, gnt, false, true, p1 - p0, K, g->OG, 1.0f, dy + p0 * O + grp * g->OG, O,
                     w + grp * g->OG, O, 0.0f, col, K, NULL);
            lm_col2im(g, col, grp, p0, p1, dx);
        }
    }
}

void lm_conv_bwd_input(const lm_conv_geom *g, const float *dy, const float *w, float *dx,
                       lm_gemm *gemm, int nt, void *ws) {
    const int64_t P = g->N * g->OH * g->OW, K = lm_conv_k(g), O = g->O;
    if (g->N * g->H * g->W * g->C == 0) return;
    if (pointwise(g)) {
        lm_sgemm(gemm, nt, false, true, P, K, O, 1.0f, dy, O, w, O, 0.0f, dx, K, NULL);
        return;
    }
    if (P == 0 || O == 0 || K == 0) {
        memset(dx, 0, (size_t)(g->N * g->H * g->W * g->C) * sizeof *dx);
        return;
    }
    const int64_t T1 = tile_rows(g, P, 1), cap = tile_cap(g, P);
    if (g->N >= nt && nt > 1) {
        /* Whole images per thread: scatters of different threads never overlap. */
        const int64_t T = tile_rows(g, g->OH * g->OW, 1);
#pragma omp parallel num_threads(nt)
        {
            int t = thread_id(), nth = team_size();
            int64_t n0 = g->N * t / nth, n1 = g->N * (t + 1) / nth;
            if (n1 > n0)
                bwd_input_images(g, dy, w, dx, gemm, 1, (float *)ws + (size_t)t * (size_t)(cap * K),
                                 n0, n1, T);
        }
        return;
    }
    bwd_input_images(g, dy, w, dx, gemm, nt, ws, 0, g->N, T1);
}

/* ---- filter gradient ---- */

size_t lm_conv_bwd_filter_ws(const lm_conv_geom *g, int nt) {
    int64_t P = g->N * g->OH * g->OW, K = lm_conv_k(g);
    size_t col = pointwise(g) ? 0 : (size_t)(tile_cap(g, P) * K);
    return (size_t)nt * (col + (size_t)(K * g->O)) * sizeof(float);
}

void lm_conv_bwd_filter(const lm_conv_geom *g, const float *x, const float *dy, float *dw,
                        lm_gemm *gemm, int nt, lm_isa isa, void *ws) {
    const int64_t P = g->N * g->OH * g->OW, K = lm_conv_k(g), O = g->O, KO = K * O;
    if (KO == 0) return;
    if (P == 0) {
        memset(dw, 0, (size_t)KO * sizeof *dw);
        return;
    }
    /* The register kernel wins while one pass over the pixels covers the taps
     * (measured: 3x3x1 windows 2-3x faster than im2col + GEMM, 3x3x3 slower). */
    const bool pw = pointwise(g),
               smallk = isa >= LM_ISA_AVX512 && (K <= 12 || (K <= 24 && g->OG <= 16));
    const int64_t T = tile_rows(g, P, nt), ntiles = (P + T - 1) / T;
    const size_t slice = (size_t)((pw ? 0 : tile_cap(g, P) * K) + KO);
    int nth = ntiles < nt ? (int)ntiles : nt;
    /* Thread t sums its tiles into acc_t (thread 0: dw itself), then the partials are added. */
    LM_PARALLEL(nth > 1, nth, {
        int t = thread_id(), T_ = team_size();
        float *mine = (float *)ws + (size_t)t * slice;
        float *acc = t == 0 ? dw : mine + slice - (size_t)KO, *col = mine;
        int64_t i0 = ntiles * t / T_, i1 = ntiles * (t + 1) / T_;
        if (i1 == i0) memset(acc, 0, (size_t)KO * sizeof *acc);
        if (smallk && i1 > i0) {
            /* Small windows: straight from x, all of this thread's pixels at once. */
            int64_t a = i0 * T, b = i1 * T < P ? i1 * T : P;
            for (int64_t grp = 0; grp < g->G; grp++)
                lm_conv_wgrad_direct_avx512(g, x, dy, acc, grp, a, b, false);
        }
        for (int64_t i = i0; i < i1 && !smallk; i++) {
            int64_t p0 = i * T, p1 = p0 + T < P ? p0 + T : P;
            for (int64_t grp = 0; grp < g->G; grp++) {
                const float *a = pw ? x + p0 * K : col;
                if (!pw) lm_im2col(g, x, grp, p0, p1, col);
                /* acc_grp (K x OG) += col^T (K x rows) @ dy_tile (rows x OG) */
                lm_sgemm(gemm, 1, true, false, K, g->OG, p1 - p0, 1.0f, a, K,
                         dy + p0 * O + grp * g->OG, O, i == i0 ? 0.0f : 1.0f, acc + grp * g->OG, O,
                         NULL);
            }
        }
        team_barrier();
        /* Sum the partials, each thread a slice of dw. */
        int64_t j0 = KO * t / T_, j1 = KO * (t + 1) / T_;
        for (int u = 1; u < T_; u++) {
            const float *restrict src = (float *)ws + (size_t)u * slice + slice - (size_t)KO;
            for (int64_t j = j0; j < j1; j++) dw[j] += src[j];
        }
    });
}
