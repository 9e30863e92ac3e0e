/* Shared parts of the recurrent ops (rnn.c, lstm.c, gru.c).
 *
 * A fused cell op (simple_rnn, lstm, gru) takes x (N, T, F), kernel (F, G),
 * recurrent (H, G) with G = gates * H, then the optional bias, h0 and c0 that
 * p.kind flags, in that order. Its output is one packed buffer shaped
 * (N, T + S, H) for S states but laid out flat as
 *     [h sequence (N, T, H) in processing order][h_last (N, H)][c_last (N, H)]
 * so that the sequence is a prefix (rnn_sequence is a free view) and each
 * state is one contiguous block (rnn_state copies it). Gate values for the
 * backward pass go in the op's aux memory.
 *
 * Its backward helper (simple_rnn_grad, ...) takes (x, kernel, recurrent,
 * forward node, gradient of the packed output), runs backpropagation through
 * time once and returns one flat buffer of every input gradient:
 *     [dx (N, T, F)][dkernel (F, G)][drecurrent (H, G)][dbias (rows, G)][dh0 (N, H)][dc0]
 * from which rnn_input_grad takes dx as a view and rnn_param_grad copies each
 * other piece.
 *
 * When the output gradient is that of one part only (an rnn_output_grad
 * node), the backward helper reads that part directly instead of a packed
 * buffer that is mostly zeros (perm[0] = RNN_DY_*).
 *
 * Params of the fused and backward ops: kind = RNN_HAS_* bits, rnn = the
 * options with activations and reset_after resolved, axis = S (states),
 * depth = bias rows (2 for a GRU with reset_after, else 1). */
#ifndef LM_RNN_IMPL_H
#define LM_RNN_IMPL_H

#include "graph/graph_impl.h"
#include <math.h>
#include <stdint.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

enum { RNN_HAS_BIAS = 1, RNN_HAS_H0 = 2, RNN_HAS_C0 = 4 };

/* Pieces of a packed input gradient, in memory order. */
enum { RNN_G_X = 0, RNN_G_KERNEL, RNN_G_RECURRENT, RNN_G_BIAS, RNN_G_H0, RNN_G_C0, RNN_G_END };

/* What input 4 of a backward helper holds: the packed output gradient, or
 * the gradient of the sequence, of h_last or of c_last alone. */
enum { RNN_DY_PACKED = 0, RNN_DY_SEQ, RNN_DY_H, RNN_DY_C };

/* Sizes of a call: batch, steps, features, units, gate columns. */
typedef struct rnn_dims {
    int64_t N, T, F, H, G;
} rnn_dims;

/* Dims from inputs 0 (x) and 2 (recurrent), shared by forward and backward calls. */
static inline rnn_dims rnn_dims_of(const lm_kcall *c) {
    rnn_dims d = {c->in[0].d[0], c->in[0].d[1], c->in[0].d[2], c->in[2].d[0], c->in[2].d[1]};
    return d;
}

/* Offsets (in floats) of the pieces of a packed input gradient; off[RNN_G_END] is the size. */
static inline void rnn_grad_layout(const rnn_dims *d, int bias_rows, int states,
                                   int64_t off[RNN_G_END + 1]) {
    int64_t size[RNN_G_END] = {d->N * d->T * d->F, d->F * d->G, d->H * d->G,
                               bias_rows * d->G,   d->N * d->H, states > 1 ? d->N * d->H : 0};
    off[0] = 0;
    for (int i = 0; i < RNN_G_END; i++) off[i + 1] = off[i] + size[i];
}

/* The output gradient as the backward reads it: the sequence part (N, T, H)
 * and the final states' parts (N, H), each NULL where it is zero. */
typedef struct rnn_dy {
    const float *seq, *h, *c;
} rnn_dy;

static inline rnn_dy rnn_dy_of(const lm_kcall *c, const rnn_dims *d) {
    const float *g = lm_f(&c->in[4]);
    const int64_t NTH = d->N * d->T * d->H, NH = d->N * d->H;
    rnn_dy r = {NULL, NULL, NULL};
    switch (c->p->perm[0]) {
    case RNN_DY_SEQ:
        r.seq = g;
        break;
    case RNN_DY_H:
        r.h = g;
        break;
    case RNN_DY_C:
        r.c = g;
        break;
    default:
        r.seq = g;
        r.h = g + NTH;
        r.c = c->p->axis > 1 ? g + NTH + NH : NULL;
    }
    return r;
}

/* Index of optional input bit among the inputs, or -1 when absent. */
static inline int rnn_input_index(int kind, int bit) {
    if (!(kind & bit)) return -1;
    int i = 3;
    for (int b = 1; b < bit; b <<= 1)
        if (kind & b) i++;
    return i;
}

/* Processing step s reads input step t. */
static inline int64_t rnn_t(const rnn_dims *d, bool backwards, int64_t s) {
    return backwards ? d->T - 1 - s : s;
}

/* Columns of the backward's XH rows: [x_t (F), h before step t (H), 1]. */
static inline int64_t rnn_xh_width(const rnn_dims *d) {
    return d->F + d->H + 1;
}

/* Rows [n0, n1) of the batch for the calling thread of a team (all rows outside one). */
static inline void rnn_my_rows(int64_t N, int64_t *n0, int64_t *n1) {
#ifdef _OPENMP
    int64_t t = omp_get_thread_num(), nt = omp_get_num_threads();
#else
    int64_t t = 0, nt = 1;
#endif
    *n0 = N * t / nt;
    *n1 = N * (t + 1) / nt;
}

/* Threads for a recurrence: the batch splits into one block of rows per
 * thread, each running every step alone, so steps need no barrier. Tiny
 * problems stay on one thread. */
static inline int rnn_threads(const lm_kcall *c, const rnn_dims *d) {
    int nt = c->env->nthreads;
    double work = (double)d->N * (double)d->T * (double)d->G * (double)(d->H + d->F);
    if (nt > d->N / 4) nt = (int)(d->N / 4); /* at least 4 rows each */
    if (work < 65536.0 * 4) nt = 1;
    return nt < 1 ? 1 : nt;
}

/* Copies n floats, or zeroes them when src is NULL. */
static inline void rnn_copy_or_zero(float *dst, const float *src, int64_t n) {
    if (n <= 0) return;
    if (src)
        memcpy(dst, src, (size_t)n * sizeof *dst);
    else
        memset(dst, 0, (size_t)n * sizeof *dst);
}

/* ---- shared helpers (rnn.c) ---- */

/* Row kernels, one table per ISA (rnn_vmath.h): pick with rnn_vec_for. */
typedef struct rnn_vec {
    /* Activation in place over m rows of n floats, ld apart (tanh, sigmoid,
     * relu, linear, hard_sigmoid). */
    void (*act_rows)(int act, int64_t m, float *restrict y, int64_t ld, int64_t n);
    /* d[i] *= act'(.) written from the activation's output y. */
    void (*act_grad)(int act, float *restrict d, const float *restrict y, int64_t n);
    /* m LSTM rows: activates the gates z (4H, rows ldz apart) in place, then
     * the cell state cc, a(cc) in ac and h from the previous cell state cp
     * (rows ldcp apart); cc, ac and h rows are ldh apart. */
    void (*lstm_fwd_rows)(int act, int ract, int64_t m, int64_t H, float *restrict z, int64_t ldz,
                          const float *restrict cp, int64_t ldcp, float *restrict cc,
                          float *restrict ac, float *restrict h, int64_t ldh);
    /* One LSTM row backwards: adds ds to the carried dh, the gate gradients
     * into dz (4H), and carries dc to the previous step. */
    void (*lstm_bwd_row)(int act, int ract, const float *restrict z, const float *restrict cp,
                         const float *restrict ac, const float *restrict ds, float *restrict dh,
                         float *restrict dc, float *restrict dz, int64_t H);
} rnn_vec;

/* Tables filled only when their file was built with the ISA's flags. */
extern const rnn_vec rnn_vec_avx2, rnn_vec_avx512;
/* The best table for isa. */
const rnn_vec *rnn_vec_for(lm_isa isa);
/* Options with defaults resolved (activations, GRU reset_after). */
lm_rnn_opts rnn_resolve(lm_rnn_opts o, bool gru);
/* Params of a fused op from its options and optional inputs. */
lm_params rnn_params(lm_rnn_opts o, const lm_node *bias, const lm_node *h0, const lm_node *c0,
                     int states, int bias_rows);
/* Shape rule of the fused ops with `gates` gates per unit. */
lm_status rnn_infer_cell(lm_infer *s, int gates);
/* Shape rule of the backward helpers. */
lm_status rnn_infer_grad(lm_infer *s);
/* Builds the fused node and the outputs the caller asked for. */
lm_node *rnn_build(lm_graph *g, int op, lm_node *x, lm_node *kernel, lm_node *recurrent,
                   lm_node *bias, lm_node *h0, lm_node *c0, const lm_params *p, lm_node **h_last,
                   lm_node **c_last);
/* Backward rule of the fused ops: one backward helper, then one piece per input. */
lm_status rnn_grad(lm_graph *g, lm_node *n, lm_node *gy, lm_node **gx, int grad_op);
/* Columns [j0, j1) of G for the calling thread of a team, whole vectors each. */
void rnn_my_cols(int64_t G, int64_t *j0, int64_t *j1);
/* Input projection x K + b (bias row 0) of batch rows [n0, n1) into P (N*T, G). */
void rnn_project(lm_kcall *c, const rnn_dims *d, int64_t n0, int64_t n1, float *P, int gnt);
/* Rows [n0, n1) of h_last (or c_last) from the sequence seq (N, T, H), or
 * the initial state when there are no steps. */
void rnn_final_state(const rnn_dims *d, const float *seq, const float *init, float *last,
                     int64_t n0, int64_t n1);
/* Backward set-up inside the team: XH (N*T, F + H + 1) rows [x_t, h before
 * step t, 1] by input step for rows [n0, n1), this thread's columns of R^T
 * (G, H) into RT, then a barrier. */
void rnn_bwd_prepare(lm_kcall *c, const rnn_dims *d, const float *h0, float *XH, float *RT,
                     int64_t n0, int64_t n1);
/* Backward end inside the team, from the gate gradients dGx of the input
 * side and dGr of the recurrent side (N*T, G): dx = dGx K^T for rows
 * [n0, n1), a barrier, then this thread's columns of dK = x^T dGx,
 * dR = h_prev^T dGr (skipped when dGr is NULL) and the bias rows (dGx, and
 * dGr for a second row). With dGr == dGx and one bias row, the three are
 * one product XH^T dG (they are adjacent in the output). */
void rnn_bwd_finish(lm_kcall *c, const rnn_dims *d, const float *dGx, const float *dGr,
                    const float *XH, int bias_rows, float *out, const int64_t *off, int64_t n0,
                    int64_t n1, int gnt);

#endif
