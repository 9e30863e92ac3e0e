/* Internal structure of the Keras layer: layers, models, the training state
 * and the interfaces between compile/fit and the optimizer, metric, progress
 * bar and callback modules. */
#ifndef LM_NN_H
#define LM_NN_H

#include "graph/graph_impl.h"
#include "lamina/callbacks.h"
#include "lamina/model.h"

struct cJSON; /* <cjson/cJSON.h>, for the layers' get_config hooks */

#define LM_MAX_WEIGHTS 12
#define LM_MAX_IO      8

/* ---- layers ---- */
typedef struct lm_weight {
    char name[32];
    lm_tensor *value; /* storage owned by the layer (a view into the model's flat buffers) */
    lm_node *var;     /* the variable in the model's current graph */
    bool trainable;
    bool has_reg;
    lm_regularizer reg;
} lm_weight;

typedef struct lm_layer_vt {
    const char *class_name; /* "Dense" */
    const char *base_name;  /* "dense": automatic names are base, base_1, ... */
    int min_in, max_in;     /* inputs a call takes */
    /* Creates the weights for input shapes whose dim 0 is the batch (-1). */
    lm_status (*build)(lm_layer *l, int n_in, const lm_shape *in);
    /* Adds the layer's ops to g; writes the outputs. Errors go to g (sticky). */
    lm_status (*call)(lm_layer *l, lm_graph *g, int n_in, lm_node *const *in, int *n_out,
                      lm_node **out);
    /* Frees what cfg points to beyond itself (NULL: nothing). */
    void (*destroy)(lm_layer *l);
    /* call builds different ops for a frozen layer (BatchNormalization), so
     * lm_layer_set_trainable rebuilds the model's graph. */
    bool call_reads_trainable;
    /* Adds the layer's own keys to its Keras config (Keras's get_config),
     * after the base keys name, trainable and dtype; helpers in
     * io/keras_config.h. NULL: the layer has no keys of its own. The
     * reverse, config to layer, is the table in io/keras_config_layers.c. */
    lm_status (*get_config)(const lm_layer *l, struct cJSON *config);
} lm_layer_vt;

struct lm_layer {
    const lm_layer_vt *vt;
    char *name;
    lm_model *model; /* owner once added or called */
    lm_ctx *ctx;     /* the owner's context */
    void *cfg;       /* copy of the options struct */
    int n_weights;
    lm_weight w[LM_MAX_WEIGHTS];
    bool built, trainable;
    bool has_input_shape; /* from input_shape / input_dim: (batch, ...) */
    lm_shape input_shape;
    bool has_activity_reg;
    lm_regularizer activity_reg;
    lm_graph *bound;      /* graph holding w[i].var */
    lm_layer *inner[2];   /* wrapped layers (Bidirectional), owned */
    lm_dtype input_dtype; /* InputLayer */
};

/* Allocates a layer of type vt with a copy of cfg (cfg_size bytes) and the
 * common options. NULL on OOM. */
lm_layer *lm_layer_alloc(const lm_layer_vt *vt, const void *cfg, size_t cfg_size, const char *name,
                         lm_shape input_shape, int64_t input_dim, lm_flag trainable);
/* Adds a weight during build, initialised from init (or dflt when init.kind
 * is LM_INIT_DEFAULT) with the layer's context. Returns its index or -1. */
int lm_layer_add_weight(lm_layer *l, const char *name, lm_shape shape, lm_initializer init,
                        lm_init_kind dflt, const lm_regularizer *reg, bool trainable);
/* Makes w[i].var refer to g (recreating the variables after a rebuild). */
lm_status lm_layer_bind(lm_layer *l, lm_graph *g);
/* Initialises a tensor with Keras fan rules (for weights and tests). */
lm_status lm_init_fill(lm_initializer init, lm_tensor *t, lm_ctx *ctx);
/* Keras name of an activation for summaries and configs. */
const char *lm_act_keras_name(lm_activation a);

/* ---- models ---- */
struct lm_kt {
    lm_model *m;
    lm_node *node;   /* in the current graph */
    lm_shape shape;  /* batch dim -1 */
    lm_layer *layer; /* producer, NULL for a model input */
    int call;        /* index of the producing call record, -1 for inputs */
    int index;       /* which output of that call */
    int input;       /* index among the model inputs, -1 otherwise */
    char *name;      /* model inputs only */
};

typedef struct lm_call_rec {
    lm_layer *layer;
    int n_in, n_out;
    lm_kt *in[LM_MAX_IO];
    lm_kt *out[LM_MAX_IO];
    lm_node *act_penalty; /* activity regularisation of this call, or NULL */
} lm_call_rec;

typedef struct lm_train lm_train; /* compiled state: see compile.c */

struct lm_model {
    lm_ctx *ctx;
    char *name;
    bool sequential;
    lm_status err;
    char errmsg[1024];
    lm_graph *g;
    int n_layers, cap_layers;
    lm_layer **layers;     /* owned, in order of first use */
    lm_layer *input_layer; /* Sequential lm_input(...) layer, owned */
    int n_inputs, n_outputs;
    lm_kt *inputs[LM_MAX_IO];
    lm_kt *outputs[LM_MAX_IO];
    int n_calls, cap_calls;
    lm_call_rec *calls;
    int n_kts, cap_kts;
    lm_kt **kts; /* owned */
    int n_names;
    struct {
        char base[32];
        int count;
    } names[64];
    lm_train *train;
    bool stop_training;
    bool built; /* graph holds every call */
    /* While a model is built from a file's config (limit_params): the weight
     * elements its layers may still create (lm_layer_add_weight refuses
     * more), so that a crafted config cannot ask for unbounded memory. */
    bool limit_params;
    int64_t param_budget;
};

/* Records the first model error (sticky) and also the context's message. */
lm_status lm_model_fail(lm_model *m, lm_status s, const char *fmt, ...) LM_PRINTF(3, 4);
/* Builds a Sequential model whose input shape was not known, from data of
 * shape (N, ...). No-op when built. */
lm_status lm_model_ensure_built(lm_model *m, int n_x, const lm_shape *x_shapes);
/* Rebuilds the graph from the call records (after a layer's call changed). */
lm_status lm_model_rebuild(lm_model *m);
/* Total of trainable / all parameters, and the model's weights in order. */
int lm_model_weights(lm_model *m, lm_weight **out, int max);
/* Drops compiled sessions (after a rebuild or weight-storage change). */
void lm_train_reset(lm_model *m);
void lm_train_free(lm_model *m);

/* ---- logs (key/value pairs for callbacks and history) ---- */
#define LM_MAX_LOGS 32
struct lm_logs {
    int n;
    char key[LM_MAX_LOGS][48];
    double val[LM_MAX_LOGS];
};
void lm_logs_clear(lm_logs *l);
void lm_logs_set(lm_logs *l, const char *key, double v);

/* ---- history ---- */
lm_history *lm_history_new(void);
lm_status lm_history_append(lm_history *h, int epoch, const lm_logs *logs);

/* ---- callbacks ---- */
typedef struct lm_callback_vt {
    void (*on_train_begin)(lm_callback *cb, lm_model *m, const lm_logs *logs);
    void (*on_train_end)(lm_callback *cb, lm_model *m, const lm_logs *logs);
    void (*on_epoch_begin)(lm_callback *cb, lm_model *m, int epoch, const lm_logs *logs);
    /* May add keys ("learning_rate"), as Keras callbacks add to the logs
     * dict; fit records the history after every callback has run. */
    void (*on_epoch_end)(lm_callback *cb, lm_model *m, int epoch, lm_logs *logs);
    void (*on_train_batch_begin)(lm_callback *cb, lm_model *m, int batch, const lm_logs *logs);
    void (*on_train_batch_end)(lm_callback *cb, lm_model *m, int batch, const lm_logs *logs);
    void (*on_test_begin)(lm_callback *cb, lm_model *m, const lm_logs *logs);
    void (*on_test_end)(lm_callback *cb, lm_model *m, const lm_logs *logs);
    void (*on_predict_begin)(lm_callback *cb, lm_model *m, const lm_logs *logs);
    void (*on_predict_end)(lm_callback *cb, lm_model *m, const lm_logs *logs);
    /* BackupAndRestore: the epoch to resume from (or -1), asked before training. */
    int (*resume_epoch)(lm_callback *cb, lm_model *m);
    void (*destroy)(lm_callback *cb);
} lm_callback_vt;

struct lm_callback {
    const lm_callback_vt *vt;
    void *state;
    lm_status err; /* a failed save, etc.: reported by fit */
};

/* Keras's class name of an initializer ("GlorotUniform"), NULL if out of range. */
const char *lm_init_class_name(lm_init_kind k);

#endif
