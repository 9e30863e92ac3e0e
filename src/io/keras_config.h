/* Keras config JSON, internal: helpers the layers' get_config hooks use to
 * write Keras's keys, the reader the from-config table uses, and the entry
 * points shared by keras_config*.c and keras_archive.c. */
#ifndef LM_IO_KERAS_CONFIG_H
#define LM_IO_KERAS_CONFIG_H

#include <cjson/cJSON.h>
#include "nn/nn.h"

/* ---- writing (layers' get_config hooks) ----
 * Each sets key in obj, replacing an earlier value (Keras merges the base
 * config and the layer's own keys, so a key keeps its first position), and
 * returns LM_ERR_OOM when cJSON cannot allocate. */
lm_status lm_kc_put(cJSON *obj, const char *key, cJSON *item); /* takes item */
lm_status lm_kc_put_int(cJSON *obj, const char *key, int64_t v);
lm_status lm_kc_put_num(cJSON *obj, const char *key, double v);
/* A float32 option as the shortest decimal giving the same float (0.99f is
 * written 0.99, as the Python float the user gave Keras). */
lm_status lm_kc_put_f32(cJSON *obj, const char *key, float v);
lm_status lm_kc_put_bool(cJSON *obj, const char *key, bool v);
lm_status lm_kc_put_null(cJSON *obj, const char *key);
lm_status lm_kc_put_str(cJSON *obj, const char *key, const char *s);
/* A list of n integers ([3, 3]). */
lm_status lm_kc_put_ints(cJSON *obj, const char *key, int n, const int64_t *v);
/* "valid" / "same" / "causal". */
lm_status lm_kc_put_padding(cJSON *obj, const char *key, lm_padding p);
lm_status lm_kc_put_act(cJSON *obj, const char *key, lm_activation a);
/* {"module": "keras.initializers", "class_name": ..., "config": ..., "registered_name": null};
 * dflt replaces LM_INIT_DEFAULT. */
lm_status lm_kc_put_init(cJSON *obj, const char *key, lm_initializer init, lm_init_kind dflt);
/* A regularizer object, or null for NULL / all-zero. */
lm_status lm_kc_put_reg(cJSON *obj, const char *key, const lm_regularizer *r);
/* Keras's float32 DTypePolicy object. */
cJSON *lm_kc_dtype_policy(void);
/* The layer's whole entry: {"module": "keras.layers", "class_name", "config",
 * "registered_name": null}. NULL on failure, with the message in l->ctx. */
cJSON *lm_kc_layer_entry(const lm_layer *l);

/* ---- reading ---- */
typedef struct lm_kc_reader {
    lm_status st;
    char err[1024];
    const char *layer; /* the layer being read, for messages */
    const char *cls;   /* its class */
    bool keras2;       /* Keras 2 (tf.keras) config conventions */
    /* Weight elements the model's layers may create (0: the default, 2^31):
     * a file's weights bound what its config may ask for. */
    int64_t param_budget;
    /* Normalisation layers given a positive axis: checked against the input
     * rank once the model is built (it must be the last axis). */
    int n_axes;
    struct {
        lm_layer *layer;
        int axis;
    } axes[64];
} lm_kc_reader;

/* Records the first error (with "layer NAME (CLASS): " in front when a layer
 * is being read); returns its status. */
lm_status lm_kc_fail(lm_kc_reader *r, lm_status st, const char *fmt, ...) LM_PRINTF(3, 4);
/* Parses exactly one JSON document of len bytes (trailing blanks allowed); NULL when
 * the text is not one. */
cJSON *lm_kc_parse(const char *text, size_t len);
/* Typed getters: an absent or null key gives dflt; a value of the wrong type
 * or out of range records an error naming the key (check r->st). */
int64_t lm_kc_int(lm_kc_reader *r, const cJSON *o, const char *key, int64_t dflt, int64_t lo,
                  int64_t hi);
double lm_kc_num(lm_kc_reader *r, const cJSON *o, const char *key, double dflt);
bool lm_kc_bool(lm_kc_reader *r, const cJSON *o, const char *key, bool dflt);
const char *lm_kc_str(lm_kc_reader *r, const cJSON *o, const char *key, const char *dflt);
/* An integer or a list of up to max integers into out; the count, 0 when
 * absent, -1 on error. */
int lm_kc_ints(lm_kc_reader *r, const cJSON *o, const char *key, int max, int64_t *out, int64_t lo,
               int64_t hi);
/* The key must be absent, null, false or 0 (constraints, dropout, ...). */
void lm_kc_expect_null(lm_kc_reader *r, const cJSON *o, const char *key);
/* The key must be absent, null or the string want ("channels_last"). */
void lm_kc_expect_str(lm_kc_reader *r, const cJSON *o, const char *key, const char *want);
lm_activation lm_kc_act(lm_kc_reader *r, const cJSON *o, const char *key, lm_activation dflt);
lm_initializer lm_kc_init(lm_kc_reader *r, const cJSON *o, const char *key);
/* Fills out; true when a non-zero regularizer is given. */
bool lm_kc_reg(lm_kc_reader *r, const cJSON *o, const char *key, lm_regularizer *out);
lm_padding lm_kc_padding(lm_kc_reader *r, const cJSON *o, const char *key, bool causal_ok);
lm_dtype lm_kc_dtype(lm_kc_reader *r, const cJSON *o, const char *key, bool want_input);
/* A JSON value shortened for messages. */
const char *lm_kc_show(const cJSON *v, char *buf, size_t len);

/* Layer from its Keras entry ({"class_name", "config"}); NULL with the
 * message in r. input_shape (without the batch, ndim 0 when none) is given
 * to the layer's constructor. */
lm_layer *lm_kc_layer_from_entry(lm_kc_reader *r, const cJSON *entry);
/* A Keras batch shape ([null, 4]) as a shape without the batch (-1 for None). */
bool lm_kc_batch_shape(lm_kc_reader *r, const cJSON *v, const char *key, lm_shape *out);
/* The config object's name, for messages ("?" when absent). */
const char *lm_kc_entry_name(const cJSON *entry);

/* ---- models ---- */
/* The top-level object of config.json / to_json. NULL on failure (message in m). */
cJSON *lm_kc_model_to_cjson(lm_model *m);
/* A model from the top-level object (or a bare {"class_name", "config"}),
 * compiled from compile_config (or Keras 2's training_config when given).
 * NULL with the message in r. */
lm_model *lm_kc_model_from_cjson(lm_kc_reader *r, const cJSON *root, const cJSON *training_config);
/* Thread-local message for lm_saving_error. */
void lm_kc_set_error(const char *msg);

#endif
