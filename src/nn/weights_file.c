/* Weight snapshots: every weight of a model copied end to end into one
 * buffer and back (EarlyStopping's restore_best_weights). Weights files are
 * Keras's layout now: see src/io/keras_weights*.c. */
#include "nn/callbacks/cb_impl.h"
#include "core/tensor_impl.h"
#include <stdlib.h>
#include <string.h>

/* ---- snapshots ---- */

lm_status lm_weights_snapshot(lm_model *m, void **buf, size_t *bytes) {
    int nw = lm_model_weights(m, NULL, 0);
    lm_weight **w = malloc((size_t)(nw ? nw : 1) * sizeof *w);
    if (!w) return lm_fail(m->ctx, LM_ERR_OOM, "out of memory copying the weights");
    lm_model_weights(m, w, nw);
    size_t total = 0;
    for (int i = 0; i < nw; i++)
        total += (size_t)lm_tensor_numel(w[i]->value) * lm_dtype_size(lm_tensor_dtype(w[i]->value));
    char *p = *buf && *bytes == total ? *buf : realloc(*buf, total ? total : 1);
    if (!p) {
        free(w);
        return lm_fail(m->ctx, LM_ERR_OOM, "out of memory copying the weights");
    }
    *buf = p;
    *bytes = total;
    lm_status st = LM_OK;
    for (int i = 0; i < nw && !st; i++) {
        size_t b =
            (size_t)lm_tensor_numel(w[i]->value) * lm_dtype_size(lm_tensor_dtype(w[i]->value));
        st = lm_tensor_copy_to(w[i]->value, p, b);
        p += b;
    }
    free(w);
    return st;
}

lm_status lm_weights_restore(lm_model *m, const void *buf, size_t bytes) {
    int nw = lm_model_weights(m, NULL, 0);
    lm_weight **w = malloc((size_t)(nw ? nw : 1) * sizeof *w);
    if (!w) return lm_fail(m->ctx, LM_ERR_OOM, "out of memory restoring the weights");
    lm_model_weights(m, w, nw);
    const char *p = buf;
    lm_status st = LM_OK;
    for (int i = 0; i < nw && !st; i++) {
        size_t b =
            (size_t)lm_tensor_numel(w[i]->value) * lm_dtype_size(lm_tensor_dtype(w[i]->value));
        if ((size_t)(p - (const char *)buf) + b > bytes) {
            st = lm_fail(m->ctx, LM_ERR_STATE, "the model's weights changed size since the copy");
            break;
        }
        st = lm_tensor_copy_from(w[i]->value, p, b);
        p += b;
    }
    free(w);
    return st;
}
