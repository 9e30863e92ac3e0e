/* A functional model with a residual connection, on MNIST:
 *
 *   Input(784) -> Dense(128, relu) = h
 *   h -> Dense(128, relu) -> Dense(128) = r
 *   Add([h, r]) -> Activation(relu) -> Dense(10, softmax)
 *
 * Adam, sparse categorical cross-entropy on the integer labels.
 *
 *   functional [--epochs N (3)] [--batch-size N (32)] [--seed N (1)]
 *
 * The last line printed is the test accuracy (about 0.975). Data:
 * $LAMINA_DATA/mnist/, else the download cache (see lamina/datasets.h). */
#include "example_args.h"
#include <lamina/lamina.h>
#include <lamina/model.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* x.reshape(-1, 784).astype("float32") / 255 */
static lm_tensor *flat_images(lm_tensor *u8) {
    lm_tensor *x = lm_tensor_cast(u8, LM_F32);
    if (!x) return NULL;
    float *p = lm_tensor_f32(x);
    for (int64_t i = 0; i < lm_tensor_numel(x); i++) p[i] /= 255.0f;
    lm_tensor *r = lm_tensor_reshape(x, LM_SHAPE(-1, 784));
    lm_tensor_free(x);
    return r;
}

int main(int argc, char **argv) {
    int epochs = 3, batch = 32;
    unsigned long long seed = 1;
    if (!parse_args(argc, argv, &epochs, &batch, &seed)) return 2;

    lm_model *m = lm_functional("residual_mlp");
    if (!m) return 1;
    lm_ctx *ctx = lm_model_ctx(m);
    lm_ctx_seed(ctx, seed);
    lm_tensor *xtr8, *y_train, *xte8, *y_test;
    if (lm_mnist_load_data(ctx, &xtr8, &y_train, &xte8, &y_test) != LM_OK) {
        fprintf(stderr, "functional: %s\n", lm_ctx_error(ctx));
        lm_model_free(m);
        return 1;
    }
    lm_tensor *x_train = flat_images(xtr8), *x_test = flat_images(xte8);
    lm_tensor_free(xtr8);
    lm_tensor_free(xte8);

    lm_kt *inputs = lm_model_input(m, LM_SHAPE(784), "digits");
    lm_kt *h = lm_call(lm_dense(128, .activation = LM_RELU), inputs);
    lm_kt *r = lm_call(lm_dense(128, .activation = LM_RELU), h);
    r = lm_call(lm_dense(128), r);
    lm_kt *sum = lm_call_n(lm_add_layer(), 2, (lm_kt *const[]){h, r});
    lm_kt *act = lm_call(lm_activation_layer(LM_RELU), sum);
    lm_kt *outputs = lm_call(lm_dense(10, .activation = LM_SOFTMAX), act);
    lm_model_set_outputs(m, 1, &outputs);
    lm_compile(m, .optimizer = lm_adam(), .loss = LM_SPARSE_CATEGORICAL_CROSSENTROPY,
               .metrics = LM_METRICS(LM_ACCURACY));
    int rc = 1;
    double score[2];
    if (!x_train || !x_test || lm_model_status(m) != LM_OK) goto done;
    lm_summary(m, stdout);

    lm_history *hist = lm_fit(m, x_train, y_train, .epochs = epochs, .batch_size = batch);
    if (!hist) goto done;
    lm_history_free(hist);
    if (lm_evaluate(m, x_test, y_test, score, 2, .verbose = LM_SILENT) != 2) goto done;
    printf("test loss: %.4f\n", score[0]);
    printf("test accuracy: %.4f\n", score[1]);
    rc = 0;
done:
    if (rc)
        fprintf(stderr, "functional: %s\n",
                lm_model_error(m)[0] ? lm_model_error(m) : lm_ctx_error(ctx));
    lm_tensor_free(x_train);
    lm_tensor_free(y_train);
    lm_tensor_free(x_test);
    lm_tensor_free(y_test);
    lm_model_free(m);
    return rc;
}
