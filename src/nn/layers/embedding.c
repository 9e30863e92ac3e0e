/* Embedding: rows of "embeddings" (input_dim, output_dim) picked by integer
 * indices; output shape input.shape + (output_dim,). Float inputs (model
 * inputs are float32) are cast to int32 first, as Keras does. */
#include "io/keras_config.h"
#include "nn/nn.h"

typedef struct emb_cfg {
    int input_dim, output_dim;
    lm_embedding_opts o;
    lm_regularizer reg; /* copy the option pointer is redirected to */
} emb_cfg;

static lm_status emb_build(lm_layer *l, int n_in, const lm_shape *in) {
    (void)n_in, (void)in;
    emb_cfg *c = l->cfg;
    /* Keras's "uniform" default: RandomUniform(-0.05, 0.05). */
    if (lm_layer_add_weight(l, "embeddings", LM_SHAPE(c->input_dim, c->output_dim),
                            c->o.embeddings_initializer, LM_INIT_RANDOM_UNIFORM,
                            c->o.embeddings_regularizer, true) < 0)
        return lm_fail(l->ctx, LM_ERR_OOM, "%s: %s", l->name, lm_ctx_error(l->ctx));
    return LM_OK;
}

static lm_status emb_call(lm_layer *l, lm_graph *g, int n_in, lm_node *const *in, int *n_out,
                          lm_node **out) {
    (void)n_in;
    lm_node *idx = in[0];
    if (idx->shape.ndim + 1 >= LM_MAX_DIMS) {
        char a[96];
        lm_graph_fail(g, LM_ERR_SHAPE, "%s: input %s has too many dimensions", l->name,
                      lm_shape_str(idx->shape, a, sizeof a));
        return LM_ERR_SHAPE;
    }
    if (idx->dt != LM_I32 && idx->dt != LM_I64) idx = lm_op_cast(g, idx, LM_I32);
    out[0] = lm_op_gather(g, l->w[0].var, idx);
    *n_out = 1;
    return LM_OK;
}

/* Keras's Embedding.get_config keys, in its order. */
static lm_status emb_get_config(const lm_layer *l, cJSON *k) {
    const emb_cfg *c = l->cfg;
    lm_status st = lm_kc_put_int(k, "input_dim", c->input_dim);
    if (!st) st = lm_kc_put_int(k, "output_dim", c->output_dim);
    if (!st)
        st = lm_kc_put_init(k, "embeddings_initializer", c->o.embeddings_initializer,
                            LM_INIT_RANDOM_UNIFORM);
    if (!st) st = lm_kc_put_reg(k, "embeddings_regularizer", c->o.embeddings_regularizer);
    if (!st)
        st =
            lm_kc_put_reg(k, "activity_regularizer", l->has_activity_reg ? &l->activity_reg : NULL);
    if (!st) st = lm_kc_put_null(k, "embeddings_constraint");
    if (!st) st = lm_kc_put_bool(k, "mask_zero", false);
    if (!st) st = lm_kc_put_null(k, "quantization_config");
    return st;
}

static const lm_layer_vt emb_vt = {.class_name = "Embedding",
                                   .base_name = "embedding",
                                   .min_in = 1,
                                   .max_in = 1,
                                   .build = emb_build,
                                   .call = emb_call,
                                   .get_config = emb_get_config};

lm_layer *lm_embedding_(int input_dim, int output_dim, lm_embedding_opts o) {
    if (input_dim < 1 || output_dim < 1) return NULL;
    emb_cfg c = {.input_dim = input_dim, .output_dim = output_dim, .o = o};
    lm_layer *l =
        lm_layer_alloc(&emb_vt, &c, sizeof c, o.name, o.input_shape, o.input_dim, o.trainable);
    if (l) {
        emb_cfg *ec = l->cfg;
        if (o.embeddings_regularizer)
            ec->reg = *o.embeddings_regularizer, ec->o.embeddings_regularizer = &ec->reg;
        ec->o.name = NULL;
    }
    return l;
}
