/* TerminateOnNaN (keras/src/callbacks/terminate_on_nan.py): stops training
 * gracefully (stop_training, so on_train_end still runs) after a batch whose
 * running loss is NaN or infinite. */
#include "nn/callbacks/cb_impl.h"
#include <math.h>

static void tnan_batch_end(lm_callback *cb, lm_model *m, int batch, const lm_logs *logs) {
    (void)cb;
    double loss;
    if (lm_logs_find(logs, "loss", &loss) && !isfinite(loss)) {
        printf("Batch %d: Invalid loss, terminating training\n", batch);
        fflush(stdout);
        lm_model_stop_training(m);
    }
}

static const lm_callback_vt tnan_vt = {.on_train_batch_end = tnan_batch_end};

lm_callback *lm_terminate_on_nan(void) {
    return lm_cb_alloc(&tnan_vt, 0);
}
