/* LambdaCallback: the user's functions, each optional, with a user pointer. */
#include "nn/callbacks/cb_impl.h"

#define FNS(cb) ((const lm_callback_fns *)(cb)->state)

static void l_train_begin(lm_callback *cb, lm_model *m, const lm_logs *logs) {
    if (FNS(cb)->on_train_begin) FNS(cb)->on_train_begin(m, logs, FNS(cb)->user);
}
static void l_train_end(lm_callback *cb, lm_model *m, const lm_logs *logs) {
    if (FNS(cb)->on_train_end) FNS(cb)->on_train_end(m, logs, FNS(cb)->user);
}
static void l_epoch_begin(lm_callback *cb, lm_model *m, int epoch, const lm_logs *logs) {
    if (FNS(cb)->on_epoch_begin) FNS(cb)->on_epoch_begin(m, epoch, logs, FNS(cb)->user);
}
static void l_epoch_end(lm_callback *cb, lm_model *m, int epoch, lm_logs *logs) {
    if (FNS(cb)->on_epoch_end) FNS(cb)->on_epoch_end(m, epoch, logs, FNS(cb)->user);
}
static void l_batch_begin(lm_callback *cb, lm_model *m, int batch, const lm_logs *logs) {
    if (FNS(cb)->on_train_batch_begin) FNS(cb)->on_train_batch_begin(m, batch, logs, FNS(cb)->user);
}
static void l_batch_end(lm_callback *cb, lm_model *m, int batch, const lm_logs *logs) {
    if (FNS(cb)->on_train_batch_end) FNS(cb)->on_train_batch_end(m, batch, logs, FNS(cb)->user);
}
static void l_test_begin(lm_callback *cb, lm_model *m, const lm_logs *logs) {
    if (FNS(cb)->on_test_begin) FNS(cb)->on_test_begin(m, logs, FNS(cb)->user);
}
static void l_test_end(lm_callback *cb, lm_model *m, const lm_logs *logs) {
    if (FNS(cb)->on_test_end) FNS(cb)->on_test_end(m, logs, FNS(cb)->user);
}
static void l_predict_begin(lm_callback *cb, lm_model *m, const lm_logs *logs) {
    if (FNS(cb)->on_predict_begin) FNS(cb)->on_predict_begin(m, logs, FNS(cb)->user);
}
static void l_predict_end(lm_callback *cb, lm_model *m, const lm_logs *logs) {
    if (FNS(cb)->on_predict_end) FNS(cb)->on_predict_end(m, logs, FNS(cb)->user);
}

static const lm_callback_vt lambda_vt = {.on_train_begin = l_train_begin,
                                         .on_train_end = l_train_end,
                                         .on_epoch_begin = l_epoch_begin,
                                         .on_epoch_end = l_epoch_end,
                                         .on_train_batch_begin = l_batch_begin,
                                         .on_train_batch_end = l_batch_end,
                                         .on_test_begin = l_test_begin,
                                         .on_test_end = l_test_end,
                                         .on_predict_begin = l_predict_begin,
                                         .on_predict_end = l_predict_end};

lm_callback *lm_lambda_callback(lm_callback_fns fns) {
    lm_callback *cb = lm_cb_alloc(&lambda_vt, sizeof fns);
    if (cb) *(lm_callback_fns *)cb->state = fns;
    return cb;
}
