/* Logs (the key/value pairs callbacks see) and the training history. */
#include "nn/nn.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void lm_logs_clear(lm_logs *l) {
    l->n = 0;
}

void lm_logs_set(lm_logs *l, const char *key, double v) {
    for (int i = 0; i < l->n; i++)
        if (!strcmp(l->key[i], key)) {
            l->val[i] = v;
            return;
        }
    if (l->n == LM_MAX_LOGS) return;
    snprintf(l->key[l->n], sizeof l->key[l->n], "%s", key);
    l->val[l->n++] = v;
}

int lm_logs_count(const lm_logs *l) {
    return l ? l->n : 0;
}
const char *lm_logs_key(const lm_logs *l, int i) {
    return l && i >= 0 && i < l->n ? l->key[i] : NULL;
}
double lm_logs_value(const lm_logs *l, int i) {
    return l && i >= 0 && i < l->n ? l->val[i] : NAN;
}
double lm_logs_get(const lm_logs *l, const char *key) {
    for (int i = 0; l && key && i < l->n; i++)
        if (!strcmp(l->key[i], key)) return l->val[i];
    return NAN;
}

/* One column per key; epochs appended as rows. */
struct lm_history {
    int n_keys, n_epochs, cap;
    char key[LM_MAX_LOGS][48];
    double *val; /* cap rows of LM_MAX_LOGS */
};

lm_history *lm_history_new(void) {
    return calloc(1, sizeof(lm_history));
}

lm_status lm_history_append(lm_history *h, int epoch, const lm_logs *logs) {
    (void)epoch;
    if (h->n_epochs == h->cap) {
        int cap = h->cap ? 2 * h->cap : 16;
        double *v = realloc(h->val, (size_t)cap * LM_MAX_LOGS * sizeof *v);
        if (!v) return LM_ERR_OOM;
        h->val = v;
        h->cap = cap;
    }
    double *row = h->val + (size_t)h->n_epochs * LM_MAX_LOGS;
    for (int i = 0; i < LM_MAX_LOGS; i++) row[i] = NAN;
    for (int i = 0; i < logs->n; i++) {
        int k = 0;
        while (k < h->n_keys && strcmp(h->key[k], logs->key[i])) k++;
        if (k == h->n_keys) {
            if (h->n_keys == LM_MAX_LOGS) continue;
            snprintf(h->key[h->n_keys++], sizeof h->key[0], "%s", logs->key[i]);
        }
        row[k] = logs->val[i];
    }
    h->n_epochs++;
    return LM_OK;
}

int lm_history_epochs(const lm_history *h) {
    return h ? h->n_epochs : 0;
}
int lm_history_key_count(const lm_history *h) {
    return h ? h->n_keys : 0;
}
const char *lm_history_key(const lm_history *h, int i) {
    return h && i >= 0 && i < h->n_keys ? h->key[i] : NULL;
}
double lm_history_get(const lm_history *h, const char *key, int i) {
    if (!h || !key || i < 0 || i >= h->n_epochs) return NAN;
    for (int k = 0; k < h->n_keys; k++)
        if (!strcmp(h->key[k], key)) return h->val[(size_t)i * LM_MAX_LOGS + k];
    return NAN;
}
void lm_history_free(lm_history *h) {
    if (!h) return;
    free(h->val);
    free(h);
}
