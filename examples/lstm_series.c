/* Forecasting monthly airline passengers one month ahead with stacked LSTMs:
 *
 *   LSTM(50, return_sequences, input (10, 1)) -> LSTM(50) -> Dense(1),
 *   Adam, mean squared error.
 *
 *   lstm_series [--epochs N (100)] [--batch-size N (16)] [--seed N (1)]
 *
 * Each sample is a window of 10 months and its target the next month; the
 * last 24 months are held out. Every window is normalised by its first value
 * (x / x[0] - 1, the "normalise_windows" of the well-known Keras LSTM
 * tutorial), which keeps the inputs in a small range even where the held-out
 * years exceed anything seen in training: a min-max scaler fitted on the
 * training years puts them above 1, where the LSTMs extrapolate poorly (with
 * it, Keras itself beats the naive forecast for only some seeds).
 *
 * Prints the RMSE in passengers (thousands) of the naive forecast (next
 * month = this month) and, as the last line, of the model. Data:
 * $LAMINA_DATA/airline-passengers.csv (default ../shared/data). */
#include "example_args.h"
#include <lamina/lamina.h>
#include <lamina/model.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WINDOW   10
#define HELD_OUT 24

int main(int argc, char **argv) {
    int epochs = 100, batch = 16;
    unsigned long long seed = 1;
    if (!parse_args(argc, argv, &epochs, &batch, &seed)) return 2;
    const char *data = getenv("LAMINA_DATA");
    if (!data || !*data) data = "../shared/data";
    char path[1024];
    snprintf(path, sizeof path, "%s/airline-passengers.csv", data);

    lm_model *m = lm_sequential(NULL);
    if (!m) return 1;
    lm_ctx *ctx = lm_model_ctx(m);
    lm_ctx_seed(ctx, seed);
    const char *cols[] = {"Passengers"};
    lm_tensor *series = lm_csv_load(ctx, path, (lm_csv_opts){.columns = cols, .n_columns = 1});
    if (!series || lm_tensor_dim(series, 0) <= HELD_OUT + WINDOW) {
        fprintf(stderr, "lstm_series: %s\n",
                series ? "the series is too short" : lm_ctx_error(ctx));
        lm_tensor_free(series);
        lm_model_free(m);
        return 1;
    }
    const float *s = lm_tensor_f32(series);
    int64_t n = lm_tensor_dim(series, 0), n_win = n - WINDOW, n_train = n_win - HELD_OUT;

    /* Windows ending before month t predict month t, all relative to the window's first month. */
    lm_tensor *x = lm_tensor_new(ctx, LM_F32, LM_SHAPE(n_win, WINDOW, 1));
    lm_tensor *y = lm_tensor_new(ctx, LM_F32, LM_SHAPE(n_win, 1));
    if (!x || !y) {
        fprintf(stderr, "lstm_series: %s\n", lm_ctx_error(ctx));
        lm_tensor_free(x);
        lm_tensor_free(y);
        lm_tensor_free(series);
        lm_model_free(m);
        return 1;
    }
    float *px = lm_tensor_f32(x), *py = lm_tensor_f32(y);
    for (int64_t k = 0; k < n_win; k++) {
        float base = s[k];
        for (int j = 0; j < WINDOW; j++) px[k * WINDOW + j] = s[k + j] / base - 1;
        py[k] = s[k + WINDOW] / base - 1;
    }
    lm_tensor *x_train = lm_rows(x, 0, n_train), *y_train = lm_rows(y, 0, n_train);
    lm_tensor *x_test = lm_rows(x, n_train, HELD_OUT);
    printf("%lld months: %lld training windows, %d held-out months\n", (long long)n,
           (long long)n_train, HELD_OUT);

    lm_add(m, lm_lstm(50, .return_sequences = true, .input_shape = LM_SHAPE(WINDOW, 1)));
    lm_add(m, lm_lstm(50));
    lm_add(m, lm_dense(1));
    lm_compile(m, .optimizer = lm_adam(), .loss = LM_MSE);
    int rc = 1;
    lm_tensor *pred = NULL;
    if (lm_model_status(m) != LM_OK) goto done;
    lm_summary(m, stdout);

    lm_history *h =
        lm_fit(m, x_train, y_train, .epochs = epochs, .batch_size = batch, .verbose = LM_SILENT);
    if (!h) goto done;
    printf("trained %d epochs: loss %.6f\n", epochs, lm_history_get(h, "loss", epochs - 1));
    lm_history_free(h);
    pred = lm_predict(m, x_test, .verbose = LM_SILENT);
    if (!pred) goto done;

    /* Back to passengers: month t = (prediction + 1) * first month of its window. */
    double se = 0, se_naive = 0;
    const float *pp = lm_tensor_f32(pred);
    for (int64_t k = 0; k < HELD_OUT; k++) {
        int64_t w = n_train + k, t = w + WINDOW;
        double forecast = ((double)pp[k] + 1) * s[w];
        se += (forecast - s[t]) * (forecast - s[t]);
        se_naive += ((double)s[t - 1] - s[t]) * ((double)s[t - 1] - s[t]);
    }
    printf("naive rmse: %.1f\n", sqrt(se_naive / HELD_OUT));
    printf("test rmse: %.1f\n", sqrt(se / HELD_OUT));
    rc = 0;
done:
    if (rc) fprintf(stderr, "lstm_series: %s\n", lm_model_error(m));
    lm_tensor_free(pred);
    lm_tensor_free(x_train);
    lm_tensor_free(y_train);
    lm_tensor_free(x_test);
    lm_tensor_free(x);
    lm_tensor_free(y);
    lm_tensor_free(series);
    lm_model_free(m);
    return rc;
}
