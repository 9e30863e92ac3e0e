/* compile_config of Keras model configs: optimizer, losses and metrics, both
 * ways (keras_config_compile.c). */
#ifndef LM_IO_KERAS_CONFIG_COMPILE_H
#define LM_IO_KERAS_CONFIG_COMPILE_H

#include "io/keras_config.h"

/* Keras's get_compile_config of a compiled model into *out (NULL when the
 * model is not compiled). Errors (a loss Keras cannot express) go to the
 * model's context. */
lm_status lm_kc_compile_config(lm_model *m, cJSON **out);
/* Compiles m from a compile_config (or, legacy, Keras 2's training_config
 * with "optimizer_config"). Errors go to r. */
lm_status lm_kc_compile_from(lm_kc_reader *r, lm_model *m, const cJSON *cc, bool legacy);
/* An optimizer's Keras object ({"module": "keras.optimizers", ...}). */
cJSON *lm_kc_optimizer_config(const lm_optimizer *o);
/* An optimizer from its Keras object or name; NULL with the message in r. */
lm_optimizer *lm_kc_optimizer_from(lm_kc_reader *r, const cJSON *v);

#endif
