/* Central-difference gradient checks for graph ops.
 *
 * A case builds y = f(x0, x1, ...) from variables holding fixed random
 * inputs. The analytic gradient of L = sum(y * R), for a fixed random R, is
 * built with lm_gradients(y, R); the numeric one perturbs each checked input
 * element by +-eps and evaluates L in double precision from the forward run.
 * Cases that have no gradient (argmax, one_hot...) give a `forward` callback
 * that checks values instead. */
#ifndef GRADCHECK_H
#define GRADCHECK_H

#include <lamina/lamina.h>
#include "graph/graph_impl.h"

typedef struct gc_case gc_case;

/* Builds the output from the inputs (variables). */
typedef lm_node *(*gc_build_fn)(lm_graph *g, lm_node **x, const gc_case *c);
/* Optional: fills input i (default: uniform [lo, hi) from the context). */
typedef void (*gc_init_fn)(lm_tensor *x, int i, const gc_case *c);
/* Optional: checks the forward output; returns the number of failures. */
typedef int (*gc_forward_fn)(lm_tensor *y, lm_tensor **x, const gc_case *c);

struct gc_case {
    const char *name;
    int n_in;
    lm_shape shape[8];
    lm_dtype dtype[8]; /* default LM_F32 (0) */
    gc_build_fn build;
    gc_init_fn init;
    gc_forward_fn forward;
    float lo, hi;       /* init range, default [-1, 1) */
    float eps;          /* default 1e-3 */
    float tol;          /* relative tolerance, default 1e-2 */
    float atol;         /* absolute tolerance, default 1e-3 */
    unsigned skip_mask; /* inputs not to differentiate (bit i) */
    bool training;      /* session training flag */
    bool no_grad;       /* forward check only */
    float fparam[4];    /* free parameters for the builder */
    int iparam[4];
};

/* Runs one case; returns the number of failures and prints the worst errors.
 * Records, in seen_fwd / seen_bwd (indexed by op id), which ops appeared in the
 * differentiated forward graph and in the backward graph. */
int gc_run(lm_ctx *ctx, const gc_case *c, bool *seen_fwd, bool *seen_bwd);

#endif
