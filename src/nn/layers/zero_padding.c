/* ZeroPadding2D: zero rows above and below, zero columns left and right of
 * (batch, height, width, channels) inputs; default ((1, 1), (1, 1)). */
#include "io/keras_config.h"
#include "nn/nn.h"

typedef struct zpad_cfg {
    int64_t pad[2][2]; /* ((top, bottom), (left, right)) */
} zpad_cfg;

static lm_status zpad_call(lm_layer *l, lm_graph *g, int n_in, lm_node *const *in, int *n_out,
                           lm_node **out) {
    (void)n_in;
    zpad_cfg *c = l->cfg;
    lm_shape s = in[0]->shape;
    if (s.ndim != 4) {
        char a[96];
        lm_graph_fail(g, LM_ERR_SHAPE,
                      "%s: expected input with 4 dimensions (batch, height, width, channels), "
                      "got %s",
                      l->name, lm_shape_str(s, a, sizeof a));
        return LM_ERR_SHAPE;
    }
    const int64_t before[4] = {0, c->pad[0][0], c->pad[1][0], 0};
    const int64_t after[4] = {0, c->pad[0][1], c->pad[1][1], 0};
    out[0] = lm_op_pad(g, in[0], before, after, 0.0f);
    *n_out = 1;
    return LM_OK;
}

/* "padding": [[top, bottom], [left, right]], then "data_format". */
static lm_status zpad_get_config(const lm_layer *l, cJSON *k) {
    const zpad_cfg *c = l->cfg;
    cJSON *pair = cJSON_CreateObject(); /* a holder for the two lists */
    lm_status st = pair ? LM_OK : LM_ERR_OOM;
    if (!st) st = lm_kc_put_ints(pair, "0", 2, c->pad[0]);
    if (!st) st = lm_kc_put_ints(pair, "1", 2, c->pad[1]);
    cJSON *list = st ? NULL : cJSON_CreateArray();
    if (list) {
        cJSON_AddItemToArray(list, cJSON_DetachItemFromObject(pair, "0"));
        cJSON_AddItemToArray(list, cJSON_DetachItemFromObject(pair, "1"));
    }
    cJSON_Delete(pair);
    if (!st) st = lm_kc_put(k, "padding", list);
    if (!st) st = lm_kc_put_str(k, "data_format", "channels_last");
    return st;
}

static const lm_layer_vt zpad_vt = {.class_name = "ZeroPadding2D",
                                    .base_name = "zero_padding2d",
                                    .min_in = 1,
                                    .max_in = 1,
                                    .call = zpad_call,
                                    .get_config = zpad_get_config};

lm_layer *lm_zero_padding2d_(lm_zero_padding2d_opts o) {
    zpad_cfg c;
    bool all_zero = true;
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 2; j++) {
            if (o.padding[i][j] < 0) return NULL;
            all_zero = all_zero && o.padding[i][j] == 0;
            c.pad[i][j] = o.padding[i][j];
        }
    if (all_zero) c.pad[0][0] = c.pad[0][1] = c.pad[1][0] = c.pad[1][1] = 1;
    return lm_layer_alloc(&zpad_vt, &c, sizeof c, o.name, o.input_shape, o.input_dim, o.trainable);
}
