/* Keras model files: the .keras archive (config.json, metadata.json and
 * model.weights.h5 in a zip, laid out as Keras 3 writes it), legacy Keras 2
 * .h5 files (read only), and the model config JSON of a .keras file, so a
 * model can be defined in a file:
 *
 *     lm_model *m = lm_load("mnist.keras");          // compiled, optimizer state restored
 *     if (!m) fprintf(stderr, "%s\n", lm_saving_error());
 *     lm_fit(m, x, y, .epochs = 2);
 *     lm_save(m, "mnist.keras");                     // Keras opens it with keras.models.load_model
 *
 * Supported layers: InputLayer, Dense, Activation, Dropout, Flatten, Reshape,
 * Permute, RepeatVector, Conv1D, Conv2D, MaxPooling1D/2D, AveragePooling1D/2D,
 * GlobalAveragePooling1D/2D, GlobalMaxPooling1D/2D, ZeroPadding2D,
 * BatchNormalization, LayerNormalization, Embedding, SimpleRNN, LSTM, GRU,
 * Bidirectional, Add, Subtract, Multiply, Average, Concatenate; in Sequential
 * and functional models. A file using anything else is refused with a
 * message naming the layer's class and name. */
#ifndef LAMINA_SAVING_H
#define LAMINA_SAVING_H

#include "lamina/model.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Saves the model as a Keras 3 .keras file: its config (with the
 * compile_config when compiled), metadata and weights, plus the optimizer's
 * variables once it has been built, so training resumes where it stopped.
 * Atomic: the archive is written to a temporary file in the same folder,
 * fsync'd and renamed over path, so a crash leaves the old file or the new
 * one. The message is in the model's context (lm_model_error). */
lm_status lm_save(lm_model *m, const char *path);

/* Loads a .keras file (or a legacy Keras 2 .h5 model file, chosen by its
 * content). The model is compiled when the file has a compile_config, with
 * the optimizer's variables restored when the file has them. NULL on error,
 * with the message in lm_saving_error(). */
lm_model *lm_load(const char *path);

/* The model's config as Keras's config.json of a .keras file writes it
 * ({"module": "keras", "class_name": "Sequential", "config": {...},
 * "build_config": ..., "compile_config": ...}). A new string to free with
 * free(), or NULL with the message in the model's context. */
char *lm_model_to_json(lm_model *m);

/* A new model from a config JSON as lm_model_to_json writes it (also the
 * bare {"class_name": ..., "config": ...} form and Keras 2's
 * model.to_json()), built when the config gives the input shape (else at
 * the first fit, as a Sequential model without an input). Compiled when it
 * has a compile_config. Weights are freshly initialised. NULL on error, with
 * the message in lm_saving_error(). */
lm_model *lm_model_from_json(const char *json);
/* lm_model_from_json on a file's contents (at most 64 MiB). */
lm_model *lm_model_from_json_file(const char *path);

/* Message of the last failed lm_load / lm_model_from_json* call in this
 * thread ("" when the last one succeeded). */
const char *lm_saving_error(void);

#ifdef __cplusplus
}
#endif
#endif
