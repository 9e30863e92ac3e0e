/* Trains a two-layer network on MNIST with the graph API alone (no layers):
 * placeholders, variables, ops, lm_grad, a session, and Adam written out by
 * hand over the variables. Prints the test accuracy as its last line.
 *
 *   mnist_graph [--epochs N] [--batch-size N] [--seed N] [--hidden N]
 *
 * Data: $LAMINA_DATA/mnist/ (default ../shared/data). */
#include <lamina/lamina.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct adam {
    lm_tensor *m, *v;
} adam;

/* One Adam step (Keras defaults) on a variable from its gradient. */
static void adam_step(lm_tensor *var, const lm_tensor *grad, adam *st, float lr, int64_t t) {
    const float b1 = 0.9f, b2 = 0.999f, eps = 1e-7f;
    float *w = lm_tensor_f32(var), *m = lm_tensor_f32(st->m), *v = lm_tensor_f32(st->v);
    const float *g = (const float *)lm_tensor_cdata(grad);
    float a = lr * sqrtf(1 - powf(b2, (float)t)) / (1 - powf(b1, (float)t));
    for (int64_t i = 0; i < lm_tensor_numel(var); i++) {
        m[i] += (g[i] - m[i]) * (1 - b1);
        v[i] += (g[i] * g[i] - v[i]) * (1 - b2);
        w[i] -= a * m[i] / (sqrtf(v[i]) + eps);
    }
}

static int fail(lm_ctx *ctx, const char *what) {
    fprintf(stderr, "mnist_graph: %s: %s\n", what, lm_ctx_error(ctx));
    lm_ctx_free(ctx);
    return 1;
}

int main(int argc, char **argv) {
    int epochs = 5, batch = 64, hidden = 256;
    unsigned long long seed = 1;
    for (int i = 1; i < argc; i++) {
        if (i + 1 < argc && !strcmp(argv[i], "--epochs"))
            epochs = atoi(argv[++i]);
        else if (i + 1 < argc && !strcmp(argv[i], "--batch-size"))
            batch = atoi(argv[++i]);
        else if (i + 1 < argc && !strcmp(argv[i], "--seed"))
            seed = strtoull(argv[++i], NULL, 10);
        else if (i + 1 < argc && !strcmp(argv[i], "--hidden"))
            hidden = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: %s [--epochs N] [--batch-size N] [--seed N] [--hidden N]\n",
                    argv[0]);
            return 2;
        }
    }
    if (epochs < 1 || batch < 1 || hidden < 1) {
        fprintf(stderr, "mnist_graph: epochs, batch size and hidden units must be positive\n");
        return 2;
    }
    const char *data = getenv("LAMINA_DATA");
    if (!data || !*data) data = "../shared/data";

    lm_ctx *ctx = lm_ctx_new();
    if (!ctx) return 1;
    lm_ctx_seed(ctx, seed);
    lm_tensor *xtr, *ytr, *xte, *yte, *xtr3;
    if (lm_mnist_load_split(ctx, data, true, &xtr3, &ytr) != LM_OK) return fail(ctx, "train data");
    xtr = lm_tensor_reshape(xtr3, LM_SHAPE(-1, 784));
    lm_tensor_free(xtr3);
    if (lm_mnist_load_split(ctx, data, false, &xte, &yte) != LM_OK) return fail(ctx, "test data");
    int64_t ntr = lm_tensor_dim(xtr, 0), nte = lm_tensor_dim(xte, 0);
    printf("MNIST: %lld training and %lld test images, %d threads, %s kernels\n", (long long)ntr,
           (long long)nte, lm_ctx_threads(ctx), lm_ctx_isa(ctx));

    /* logits = relu(x @ w1 + b1) @ w2 + b2; loss = mean sparse cross-entropy. */
    lm_graph *g = lm_graph_new(ctx);
    lm_node *x = lm_placeholder(g, LM_F32, LM_SHAPE(-1, 784), "x");
    lm_node *y = lm_placeholder(g, LM_I32, LM_SHAPE(-1), "y");
    lm_node *w1 = lm_variable(g, "w1", LM_F32, LM_SHAPE(784, hidden));
    lm_node *b1 = lm_variable(g, "b1", LM_F32, LM_SHAPE(hidden));
    lm_node *w2 = lm_variable(g, "w2", LM_F32, LM_SHAPE(hidden, 10));
    lm_node *b2 = lm_variable(g, "b2", LM_F32, LM_SHAPE(10));
    if (lm_graph_status(g) != LM_OK) return fail(ctx, lm_graph_error(g));
    /* Glorot-uniform kernels, zero biases, as Keras initialises Dense. */
    double l1 = sqrt(6.0 / (784 + hidden)), l2 = sqrt(6.0 / (hidden + 10));
    lm_tensor_random_uniform(lm_variable_value(w1), -l1, l1);
    lm_tensor_random_uniform(lm_variable_value(w2), -l2, l2);
    lm_node *h = lm_op_dense(g, x, w1, b1, LM_ACT_RELU);
    lm_node *logits = lm_op_dense(g, h, w2, b2, LM_ACT_LINEAR);
    lm_node *loss =
        lm_op_mean(g, lm_op_sparse_categorical_crossentropy(g, y, logits, true), 0, NULL, false);
    lm_node *vars[4] = {w1, b1, w2, b2}, *grads[4];
    if (lm_grad(g, loss, 4, vars, grads) != LM_OK) return fail(ctx, "gradients");
    lm_node *train_out[5] = {loss, grads[0], grads[1], grads[2], grads[3]};
    lm_session *train = lm_session_new(g, 5, train_out);
    lm_session *infer = lm_session_new(g, 1, &logits);
    if (!train || !infer) return fail(ctx, "session");

    adam st[4];
    for (int k = 0; k < 4; k++) {
        lm_shape s = lm_node_shape(vars[k]);
        st[k].m = lm_tensor_new(ctx, LM_F32, s);
        st[k].v = lm_tensor_new(ctx, LM_F32, s);
    }
    /* Batches are gathered into fixed buffers from an order shuffled each epoch. */
    lm_tensor *bx = lm_tensor_new(ctx, LM_F32, LM_SHAPE(batch, 784));
    lm_tensor *by = lm_tensor_new(ctx, LM_I32, LM_SHAPE(batch));
    int64_t *order = malloc((size_t)ntr * sizeof *order);
    if (!bx || !by || !order) return fail(ctx, "buffers");
    for (int64_t i = 0; i < ntr; i++) order[i] = i;
    const float *X = lm_tensor_f32(xtr);
    const int32_t *Y = lm_tensor_cdata(ytr);
    unsigned long long r = seed * 6364136223846793005ULL + 1442695040888963407ULL;
    int64_t t = 0;
    for (int e = 0; e < epochs; e++) {
        for (int64_t i = ntr - 1; i > 0; i--) {
            r = r * 6364136223846793005ULL + 1442695040888963407ULL;
            int64_t j = (int64_t)((r >> 33) % (unsigned long long)(i + 1));
            int64_t tmp = order[i];
            order[i] = order[j];
            order[j] = tmp;
        }
        double total = 0;
        int64_t steps = 0;
        for (int64_t start = 0; start < ntr; start += batch) {
            int64_t n = start + batch <= ntr ? batch : ntr - start;
            float *px = lm_tensor_f32(bx);
            int32_t *py = lm_tensor_data(by);
            for (int64_t i = 0; i < n; i++) {
                memcpy(px + i * 784, X + order[start + i] * 784, 784 * sizeof(float));
                py[i] = Y[order[start + i]];
            }
            /* The last batch may be smaller: feed views of its first n rows. */
            lm_tensor *vx = lm_tensor_slice(bx, 0, 0, n, 1), *vy = lm_tensor_slice(by, 0, 0, n, 1);
            lm_status st_ = lm_session_feed(train, x, vx);
            if (!st_) st_ = lm_session_feed(train, y, vy);
            if (!st_) st_ = lm_session_run(train);
            lm_tensor_free(vx);
            lm_tensor_free(vy);
            if (st_) return fail(ctx, "training step");
            t++;
            for (int k = 0; k < 4; k++)
                adam_step(lm_variable_value(vars[k]), lm_session_output(train, k + 1), &st[k],
                          1e-3f, t);
            total += lm_tensor_get(lm_session_output(train, 0), 0);
            steps++;
        }
        printf("epoch %d/%d: loss %.4f\n", e + 1, epochs, total / (double)steps);
    }

    /* Test accuracy: argmax of the logits against the labels. */
    lm_tensor *xflat = lm_tensor_reshape(xte, LM_SHAPE(-1, 784));
    if (!xflat || lm_session_feed(infer, x, xflat) || lm_session_run(infer))
        return fail(ctx, "evaluation");
    const float *L = lm_tensor_f32(lm_session_output(infer, 0));
    const int32_t *T = lm_tensor_cdata(yte);
    int64_t correct = 0;
    for (int64_t i = 0; i < nte; i++) {
        int best = 0;
        for (int k = 1; k < 10; k++)
            if (L[i * 10 + k] > L[i * 10 + best]) best = k;
        correct += best == T[i];
    }
    printf("test accuracy: %.4f\n", (double)correct / (double)nte);

    lm_tensor_free(xflat);
    for (int k = 0; k < 4; k++) {
        lm_tensor_free(st[k].m);
        lm_tensor_free(st[k].v);
    }
    free(order);
    lm_tensor_free(bx);
    lm_tensor_free(by);
    lm_session_free(train);
    lm_session_free(infer);
    lm_graph_free(g);
    lm_tensor_free(xtr);
    lm_tensor_free(ytr);
    lm_tensor_free(xte);
    lm_tensor_free(yte);
    lm_ctx_free(ctx);
    return 0;
}
