/* Activations by name (Keras strings) and by enum, for layers and fused ops. */
#include "graph/graph_impl.h"
#include <string.h>

static const char *const act_names[LM_ACT_COUNT] = {
    [LM_ACT_LINEAR] = "linear",
    [LM_ACT_RELU] = "relu",
    [LM_ACT_SIGMOID] = "sigmoid",
    [LM_ACT_TANH] = "tanh",
    [LM_ACT_SOFTMAX] = "softmax",
    [LM_ACT_LEAKY_RELU] = "leaky_relu",
    [LM_ACT_ELU] = "elu",
    [LM_ACT_SELU] = "selu",
    [LM_ACT_GELU] = "gelu",
    [LM_ACT_HARD_SIGMOID] = "hard_sigmoid",
    [LM_ACT_SOFTPLUS] = "softplus",
    [LM_ACT_SOFTSIGN] = "softsign",
    [LM_ACT_SILU] = "silu",
    [LM_ACT_EXP] = "exponential",
    [LM_ACT_LOG_SOFTMAX] = "log_softmax",
};

const char *lm_activation_name(lm_activation a) {
    return (int)a >= 0 && a < LM_ACT_COUNT ? act_names[a] : NULL;
}

int lm_activation_from_name(const char *name) {
    if (!name) return -1;
    if (!strcmp(name, "swish")) return LM_ACT_SILU; /* Keras alias */
    for (int a = 0; a < LM_ACT_COUNT; a++)
        if (!strcmp(name, act_names[a])) return a;
    return -1;
}

/* Keras defaults: leaky_relu negative_slope 0.2, elu alpha 1, gelu exact
 * (keras.activations.gelu has approximate=False). */
lm_node *lm_op_activation(lm_graph *g, lm_node *x, lm_activation a) {
    if (!g) return NULL;
    switch (a) {
    case LM_ACT_LINEAR:
        if (!x && !g->err) return lm_graph_fail(g, LM_ERR_ARG, "activation linear: input is NULL");
        return x;
    case LM_ACT_RELU:
        return lm_op_relu(g, x);
    case LM_ACT_SIGMOID:
        return lm_op_sigmoid(g, x);
    case LM_ACT_TANH:
        return lm_op_tanh(g, x);
    case LM_ACT_SOFTMAX:
        return lm_op_softmax(g, x, -1);
    case LM_ACT_LEAKY_RELU:
        return lm_op_leaky_relu(g, x, 0.2f);
    case LM_ACT_ELU:
        return lm_op_elu(g, x, 1.0f);
    case LM_ACT_SELU:
        return lm_op_selu(g, x);
    case LM_ACT_GELU:
        return lm_op_gelu(g, x, false);
    case LM_ACT_HARD_SIGMOID:
        return lm_op_hard_sigmoid(g, x);
    case LM_ACT_SOFTPLUS:
        return lm_op_softplus(g, x);
    case LM_ACT_SOFTSIGN:
        return lm_op_softsign(g, x);
    case LM_ACT_SILU:
        return lm_op_silu(g, x);
    case LM_ACT_EXP:
        return lm_op_exp(g, x);
    case LM_ACT_LOG_SOFTMAX:
        return lm_op_log_softmax(g, x, -1);
    default:
        return lm_graph_fail(g, LM_ERR_ARG, "activation: unknown activation %d (valid: 0 to %d)",
                             (int)a, LM_ACT_COUNT - 1);
    }
}
