/* A small multilayer perceptron on MNIST downscaled to 10x10 (100 inputs):
 *
 *   Dense(64, relu, input_dim=100) -> Dense(10, softmax),
 *   Adam, categorical cross-entropy on one-hot labels.
 *
 *   mnist_mlp [--epochs N (10)] [--batch-size N (32)] [--seed N (1)]
 *
 * The images are shrunk by area averaging, as tf.image.resize(..., "area"):
 * output cell o covers input pixels [2.8 o, 2.8 (o + 1)) in each direction,
 * each pixel weighted by its overlap. tests/keras/mnist_mlp_keras.py trains
 * the same model on the same inputs in Keras, whose test accuracy (0.9688,
 * tests/data/keras/mnist_mlp/keras_accuracy.txt) this should match within
 * half a point. The last line printed is the test accuracy. */
#include "example_args.h"
#include <lamina/lamina.h>
#include <lamina/model.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SIDE 10

/* w[o][i]: overlap of output cell o, [o s, (o + 1) s) with s = 28 / SIDE, with
 * input pixel [i, i + 1), divided by s (the weights sum to 1 over i). */
static void area_weights(double w[SIDE][28]) {
    double s = 28.0 / SIDE;
    for (int o = 0; o < SIDE; o++) {
        for (int i = 0; i < 28; i++) {
            double lo = o * s > i ? o * s : i, hi = (o + 1) * s < i + 1 ? (o + 1) * s : i + 1;
            w[o][i] = hi > lo ? (hi - lo) / s : 0;
        }
    }
}

/* uint8 (N, 28, 28) -> float32 (N, 100): pixels / 255, then W x W^T per image. */
static lm_tensor *downscale(lm_ctx *ctx, const lm_tensor *u8) {
    int64_t n = lm_tensor_dim(u8, 0);
    lm_tensor *x = lm_tensor_new(ctx, LM_F32, LM_SHAPE(n, SIDE * SIDE));
    if (!x) return NULL;
    static double w[SIDE][28];
    area_weights(w);
    const uint8_t *src = lm_tensor_cdata(u8);
    float *dst = lm_tensor_f32(x);
    for (int64_t k = 0; k < n; k++) {
        const uint8_t *img = src + k * 784;
        double rows[SIDE][28]; /* W x: shrink the rows first */
        for (int o = 0; o < SIDE; o++) {
            for (int j = 0; j < 28; j++) {
                double acc = 0;
                for (int i = 0; i < 28; i++) acc += w[o][i] * (img[i * 28 + j] / 255.0);
                rows[o][j] = acc;
            }
        }
        for (int o = 0; o < SIDE; o++) {
            for (int p = 0; p < SIDE; p++) {
                double acc = 0;
                for (int j = 0; j < 28; j++) acc += rows[o][j] * w[p][j];
                dst[k * SIDE * SIDE + o * SIDE + p] = (float)acc;
            }
        }
    }
    return x;
}

int main(int argc, char **argv) {
    int epochs = 10, batch = 32;
    unsigned long long seed = 1;
    if (!parse_args(argc, argv, &epochs, &batch, &seed)) return 2;

    lm_model *m = lm_sequential(NULL);
    if (!m) return 1;
    lm_ctx *ctx = lm_model_ctx(m);
    lm_ctx_seed(ctx, seed);
    lm_tensor *xtr8, *ytr8, *xte8, *yte8;
    if (lm_mnist_load_data(ctx, &xtr8, &ytr8, &xte8, &yte8) != LM_OK) {
        fprintf(stderr, "mnist_mlp: %s\n", lm_ctx_error(ctx));
        lm_model_free(m);
        return 1;
    }
    lm_tensor *x_train = downscale(ctx, xtr8), *x_test = downscale(ctx, xte8);
    lm_tensor *y_train = lm_to_categorical(ytr8, 10), *y_test = lm_to_categorical(yte8, 10);
    lm_tensor_free(xtr8);
    lm_tensor_free(ytr8);
    lm_tensor_free(xte8);
    lm_tensor_free(yte8);

    lm_add(m, lm_dense(64, .activation = LM_RELU, .input_dim = SIDE * SIDE));
    lm_add(m, lm_dense(10, .activation = LM_SOFTMAX));
    lm_compile(m, .optimizer = lm_adam(), .loss = LM_CATEGORICAL_CROSSENTROPY,
               .metrics = LM_METRICS(LM_ACCURACY));
    int rc = 1;
    double score[2];
    if (!x_train || !x_test || lm_model_status(m) != LM_OK) goto done;
    lm_summary(m, stdout);

    lm_history *h =
        lm_fit(m, x_train, y_train, .epochs = epochs, .batch_size = batch, .verbose = 2);
    if (!h) goto done;
    lm_history_free(h);
    if (lm_evaluate(m, x_test, y_test, score, 2, .verbose = LM_SILENT) != 2) goto done;
    printf("test loss: %.4f\n", score[0]);
    printf("test accuracy: %.4f\n", score[1]);
    rc = 0;
done:
    if (rc)
        fprintf(stderr, "mnist_mlp: %s\n",
                lm_model_error(m)[0] ? lm_model_error(m) : lm_ctx_error(ctx));
    lm_tensor_free(x_train);
    lm_tensor_free(y_train);
    lm_tensor_free(x_test);
    lm_tensor_free(y_test);
    lm_model_free(m);
    return rc;
}
