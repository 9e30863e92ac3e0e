/* The computation graph: placeholders, variables, constants and op nodes;
 * reverse-mode differentiation; sessions that plan memory once and run the
 * graph on the context's threads. */
#ifndef LAMINA_GRAPH_H
#define LAMINA_GRAPH_H

#include <stdbool.h>
#include <stdio.h>
#include "lamina/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct lm_graph lm_graph;
typedef struct lm_node lm_node;
typedef struct lm_session lm_session;

/* New empty graph using ctx for threads, randomness and error messages. */
lm_graph *lm_graph_new(lm_ctx *ctx);
/* Frees the graph, its nodes and its variables. Sessions on it must be freed first. */
void lm_graph_free(lm_graph *g);
/* Owning context. */
lm_ctx *lm_graph_ctx(const lm_graph *g);
/* First error met while building (sticky), LM_OK if none. Its message is lm_graph_error. */
lm_status lm_graph_status(const lm_graph *g);
/* Message of the first building error ("" if none). */
const char *lm_graph_error(const lm_graph *g);
/* Sets the name prefixed to the error messages of ops built from now on,
 * e.g. a layer name: "dense_1/matmul: ..." (NULL or "" clears it). */
void lm_graph_set_scope(lm_graph *g, const char *scope);
/* Number of nodes in the graph. */
int lm_graph_size(const lm_graph *g);

/* An input fed at run time. A dimension of -1 (typically the batch) is
 * fixed by the tensor fed to each run. */
lm_node *lm_placeholder(lm_graph *g, lm_dtype dt, lm_shape shape, const char *name);
/* A trainable value owned by the graph, zero-initialised; fill it through
 * lm_variable_value. The name must be unique in the graph (NULL picks one). */
lm_node *lm_variable(lm_graph *g, const char *name, lm_dtype dt, lm_shape shape);
/* A constant holding a copy of value. */
lm_node *lm_constant(lm_graph *g, const lm_tensor *value);
/* A float32 scalar constant. */
lm_node *lm_scalar(lm_graph *g, float v);
/* Storage of a variable or constant node: read, write or randomise it in place.
 * NULL for other nodes. Owned by the graph. */
lm_tensor *lm_variable_value(lm_node *n);

/* Static shape of a node (-1 where only known at run time). */
lm_shape lm_node_shape(const lm_node *n);
/* Number of dimensions of a node. */
int lm_node_ndim(const lm_node *n);
/* Element type of a node. */
lm_dtype lm_node_dtype(const lm_node *n);
/* Name of a node (as given, or "<op>_<id>"). */
const char *lm_node_name(const lm_node *n);
/* Renames a node; names prefix its error messages. */
lm_status lm_node_set_name(lm_node *n, const char *name);
/* Name of the op computing the node ("matmul", "placeholder", ...). */
const char *lm_node_op(const lm_node *n);
/* Graph owning the node. */
lm_graph *lm_node_graph(const lm_node *n);

/* Reverse-mode gradients of the sum of `loss` with respect to each of
 * wrt[0..n-1], written into grads[0..n-1] as new graph nodes. A node that
 * does not influence the loss gets a zero gradient of its shape. */
lm_status lm_grad(lm_graph *g, lm_node *loss, int n, lm_node *const *wrt, lm_node **grads);
/* As lm_grad, but the gradient flowing into `y` is grad_y (same shape as y)
 * rather than ones: a vector-Jacobian product. grad_y NULL means ones. */
lm_status lm_gradients(lm_graph *g, lm_node *y, lm_node *grad_y, int n, lm_node *const *wrt,
                       lm_node **grads);

/* A session computing outputs[0..n_out-1] and what they depend on. Memory is
 * planned when the session is created and again only when a fed shape
 * changes, so a steady run allocates nothing. */
lm_session *lm_session_new(lm_graph *g, int n_out, lm_node *const *outputs);
/* Frees a session. NULL is a no-op. */
void lm_session_free(lm_session *s);
/* Binds a placeholder to a tensor for the following runs. The tensor must stay
 * alive and unchanged in size until it is re-bound; contiguous tensors of the
 * placeholder's dtype are read in place without a copy. */
lm_status lm_session_feed(lm_session *s, lm_node *placeholder, lm_tensor *value);
/* Sets the training flag read by dropout and batch normalisation (default false). */
lm_status lm_session_set_training(lm_session *s, bool training);
/* Runs the graph once. */
lm_status lm_session_run(lm_session *s);
/* Output i of the last run, a view owned by the session, valid until the next run. */
lm_tensor *lm_session_output(lm_session *s, int i);
/* Bytes of the session's planned arena (activations, gradients and scratch). */
size_t lm_session_arena_bytes(const lm_session *s);
/* Number of completed runs; seeds per-step randomness such as dropout masks. */
uint64_t lm_session_steps(const lm_session *s);

/* Makes output i (of static shape) be written straight into caller memory of
 * `bytes` bytes at every run, e.g. gradients into one flat vector. */
lm_status lm_session_bind_output(lm_session *s, int i, void *dst, size_t bytes);
/* Sets the step count (restoring a run: dropout masks continue where they were). */
lm_status lm_session_set_steps(lm_session *s, uint64_t steps);

/* Writes the graph as text, one node a line (for debugging). */
lm_status lm_graph_print(const lm_graph *g, FILE *f);

#ifdef __cplusplus
}
#endif
#endif
