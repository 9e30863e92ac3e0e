/* Graph and node layout, for the library's own modules only. */
#ifndef LM_GRAPH_IMPL_H
#define LM_GRAPH_IMPL_H

#include "lamina/ops.h"
#include "ops/op.h"

#define LM_MAX_INPUTS 8

struct lm_node {
    lm_graph *g;
    int id; /* creation order, which is also a topological order */
    int op; /* lm_op_id */
    lm_dtype dt;
    lm_shape shape; /* static shape, -1 where unknown until run time */
    int n_in;
    lm_node *in[LM_MAX_INPUTS];
    lm_params p;
    char *name;
    lm_tensor *value; /* storage of variables and constants */
};

struct lm_graph {
    lm_ctx *ctx;
    lm_node **nodes;
    int n_nodes, cap;
    lm_status err; /* first building error (sticky) */
    char errmsg[1024];
    char scope[128]; /* prefix of error messages, e.g. a layer name */
};

/* Creates a node of op with inputs and params after checking the inputs and
 * inferring the output; on failure records the (first) error in the graph
 * and returns NULL. A NULL input yields NULL without a new message when the
 * graph already holds an error. */
lm_node *lm_node_make(lm_graph *g, int op, int n_in, lm_node *const *in, const lm_params *p);
/* A variable whose value shares storage with a tensor the caller keeps
 * (layers own their weights; graphs are rebuilt around them). */
lm_node *lm_variable_shared(lm_graph *g, const char *name, lm_tensor *storage);
/* Records a graph-building error (kept only if it is the first). Returns NULL. */
lm_node *lm_graph_fail(lm_graph *g, lm_status s, const char *fmt, ...) LM_PRINTF(3, 4);

/* Gradient helpers used by op backward rules. */
/* gx summed over broadcast axes so that it has x's shape (gx itself when equal). */
lm_node *lm_unbroadcast(lm_graph *g, lm_node *gx, lm_node *x);
/* gy * act'(.) computed from the activation's output y, for relu, sigmoid
 * and tanh (gy itself for linear). */
lm_node *lm_act_grad_y(lm_graph *g, lm_node *gy, lm_node *y, int act);
/* y = act(y) in place for relu, sigmoid or tanh, with the SIMD elementwise
 * kernels and the run's threads (fused epilogues of dense and conv ops). */
void lm_apply_activation(float *y, int64_t n, int act, const lm_kenv *env);
/* True when both static shapes are equal with no unknown dims differing. */
bool lm_same_static_shape(const lm_node *a, const lm_node *b);

#endif
