/* Reverse-mode differentiation: walks the graph backwards from the loss,
 * asking each op's backward rule for graph nodes that compute the input
 * gradients, and sums gradients where a node feeds several consumers. */
#include "graph/graph_impl.h"
#include <stdlib.h>

static bool is_float(lm_dtype dt) {
    return dt == LM_F32 || dt == LM_F64;
}

lm_status lm_grad(lm_graph *g, lm_node *loss, int n, lm_node *const *wrt, lm_node **grads) {
    return lm_gradients(g, loss, NULL, n, wrt, grads);
}

lm_status lm_gradients(lm_graph *g, lm_node *loss, lm_node *grad_loss, int n, lm_node *const *wrt,
                       lm_node **grads) {
    if (!g) return LM_ERR_ARG;
    if (!loss || n < 0 || (n > 0 && (!wrt || !grads)))
        return lm_fail(g->ctx, LM_ERR_ARG, "grad: loss, wrt or grads is NULL");
    if (g->err) return lm_fail(g->ctx, g->err, "%s", g->errmsg);
    if (loss->g != g) return lm_fail(g->ctx, LM_ERR_ARG, "grad: loss belongs to another graph");
    if (!is_float(loss->dt))
        return lm_fail(g->ctx, LM_ERR_DTYPE, "grad: loss %s is %s, not a float", loss->name,
                       lm_dtype_name(loss->dt));
    for (int k = 0; k < n; k++)
        if (!wrt[k] || wrt[k]->g != g)
            return lm_fail(g->ctx, LM_ERR_ARG, "grad: wrt[%d] is NULL or from another graph", k);

    int N = loss->id + 1;
    char *fwd = calloc((size_t)N, 1), *bwd = calloc((size_t)N, 1);
    lm_node **acc = calloc((size_t)N, sizeof *acc);
    lm_status st = LM_OK;
    if (!fwd || !bwd || !acc) {
        st = lm_fail(g->ctx, LM_ERR_OOM, "grad: out of memory");
        goto done;
    }
    /* Nodes depending on some wrt, and nodes the loss depends on. */
    for (int k = 0; k < n; k++)
        if (wrt[k]->id < N) fwd[wrt[k]->id] = 1;
    for (int i = 0; i < N; i++)
        for (int j = 0; j < g->nodes[i]->n_in && !fwd[i]; j++)
            if (fwd[g->nodes[i]->in[j]->id]) fwd[i] = 1;
    bwd[loss->id] = 1;
    for (int i = N - 1; i >= 0; i--)
        if (bwd[i])
            for (int j = 0; j < g->nodes[i]->n_in; j++) bwd[g->nodes[i]->in[j]->id] = 1;

    if (grad_loss && (grad_loss->g != g || !lm_same_static_shape(grad_loss, loss))) {
        st = lm_fail(g->ctx, LM_ERR_SHAPE, "gradients: grad_loss must match the shape of %s",
                     loss->name);
        goto done;
    }
    acc[loss->id] = grad_loss ? grad_loss : lm_op_fill_like(g, loss, 1.0f);
    for (int i = N - 1; i >= 0 && st == LM_OK; i--) {
        lm_node *node = g->nodes[i];
        if (!acc[i] || !fwd[i] || !bwd[i]) continue;
        const lm_op_def *def = lm_op_get(node->op);
        if (def->flags & LM_OPF_SOURCE) continue;
        if (!def->grad) {
            if (def->flags & LM_OPF_NONDIFF) continue;
            st = lm_fail(g->ctx, LM_ERR_UNSUPPORTED, "grad: op %s (%s) has no gradient", def->name,
                         node->name);
            break;
        }
        lm_node *gx[LM_MAX_INPUTS] = {NULL};
        st = def->grad(g, node, acc[i], gx);
        if (st == LM_OK && g->err) st = g->err;
        for (int j = 0; j < node->n_in && st == LM_OK; j++) {
            lm_node *x = node->in[j];
            if (!gx[j] || !fwd[x->id] || !is_float(x->dt)) continue;
            acc[x->id] = acc[x->id] ? lm_op_add(g, acc[x->id], gx[j]) : gx[j];
        }
        if (g->err) st = g->err;
    }
    for (int k = 0; k < n && st == LM_OK; k++) {
        lm_node *w = wrt[k];
        grads[k] = w->id < N && acc[w->id] ? acc[w->id] : lm_op_fill_like(g, w, 0.0f);
        if (!grads[k]) st = g->err ? g->err : LM_ERR_OOM;
    }
    if (st != LM_OK && g->err) lm_fail(g->ctx, st, "%s", g->errmsg);
done:
    free(fwd);
    free(bwd);
    free(acc);
    return st;
}
