/* Loading models for the subcommands, compiling them from command-line
 * options, and the few facts about a model (its loss, input and output
 * shapes) that the public API does not expose, read from the internal
 * structures in one place. */
#include "cli.h"
#include "nn/train.h"
#include <ctype.h>
#include <errno.h>
#include <string.h>

/* A config JSON starts with '{' (after white space); .keras and .h5 files
 * are binary and go to lm_load, which tells them apart by content. */
static int is_json(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    int c;
    while ((c = fgetc(f)) != EOF && isspace(c)) continue;
    fclose(f);
    return c == '{';
}

lm_model *cli_load_model(const char *cmd, const char *path) {
    int json = is_json(path);
    if (json < 0) {
        cli_fail(cmd, "cannot open model %s: %s", path, strerror(errno));
        return NULL;
    }
    lm_model *m = json ? lm_model_from_json_file(path) : lm_load(path);
    if (!m) {
        const char *why = lm_saving_error();
        /* Keep the file name in the message even if the loader left it out. */
        if (strstr(why, path))
            cli_fail(cmd, "%s", why);
        else
            cli_fail(cmd, "cannot load model %s: %s", path, *why ? why : "unknown error");
        return NULL;
    }
    if (lm_model_status(m) != LM_OK) {
        cli_fail(cmd, "model %s: %s", path, lm_model_error(m));
        lm_model_free(m);
        return NULL;
    }
    return m;
}

bool cli_model_compiled(lm_model *m) {
    return m->train && m->train->compiled;
}

lm_loss cli_model_loss(lm_model *m) {
    return cli_model_compiled(m) ? m->train->loss[0] : LM_LOSS_NONE;
}

int cli_model_inputs(lm_model *m) {
    return m->n_inputs;
}

int cli_model_outputs(lm_model *m) {
    return m->n_outputs;
}

bool cli_model_input_shape(lm_model *m, int i, lm_shape *s) {
    if (i < 0 || i >= m->n_inputs) return false;
    *s = m->inputs[i]->shape;
    return true;
}

bool cli_model_output_shape(lm_model *m, int i, lm_shape *s) {
    if (i < 0 || i >= m->n_outputs || !m->built) return false;
    *s = m->outputs[i]->shape;
    return true;
}

/* Parses "accuracy,mae" into a terminated list; CLI_USAGE on an unknown name. */
static int parse_metrics(const char *cmd, const char *s, lm_metric *out, int max) {
    int n = 0;
    char buf[64];
    while (*s) {
        size_t len = strcspn(s, ",");
        if (len == 0 || len >= sizeof buf)
            return cli_usage(cmd, "option '--metrics': bad list '%s'", s);
        memcpy(buf, s, len);
        buf[len] = 0;
        lm_metric k = lm_metric_from_name(buf);
        if (k == LM_METRIC_NONE)
            return cli_usage(cmd,
                             "option '--metrics': unknown metric '%s' (accuracy, "
                             "binary_accuracy, categorical_accuracy, "
                             "sparse_categorical_accuracy, top_k_categorical_accuracy, "
                             "sparse_top_k_categorical_accuracy, mae, mse, precision, recall)",
                             buf);
        if (n == max) return cli_usage(cmd, "option '--metrics': at most %d metrics", max);
        out[n++] = k;
        s += len + (s[len] == ',');
    }
    out[n] = LM_METRIC_NONE;
    return CLI_OK;
}

int cli_apply_compile(const char *cmd, lm_model *m, const cli_compile *c) {
    double lr = 0;
    if (c->learning_rate &&
        cli_double(cmd, "learning-rate", c->learning_rate, 0, 1e9, &lr) != CLI_OK)
        return CLI_USAGE;
    bool compiled = cli_model_compiled(m);
    lm_train *t = m->train;
    if (!c->optimizer && !c->loss && !c->metrics) {
        if (!compiled)
            return cli_usage(cmd, "the model has no compile_config: give --loss (and "
                                  "--optimizer, --metrics)");
        if (c->learning_rate && lm_optimizer_set_learning_rate(t->opt, lr) != LM_OK)
            return cli_fail(cmd, "cannot set the learning rate to %g", lr);
        return CLI_OK;
    }
    /* Recompile, keeping what the file gave for whatever is not overridden. */
    lm_compile_opts o = {0};
    lm_loss losses[LM_MAX_IO] = {0};
    double weights[LM_MAX_IO];
    lm_metric metrics[LM_MAX_METRICS + 1] = {LM_METRIC_NONE};
    for (int i = 0; i < LM_MAX_IO; i++) {
        losses[i] = compiled ? t->loss[i] : LM_LOSS_NONE;
        weights[i] = compiled ? t->loss_weight[i] : 1.0;
    }
    if (c->loss) {
        lm_loss l = lm_loss_from_name(c->loss);
        if (l == LM_LOSS_NONE)
            return cli_usage(cmd,
                             "option '--loss': unknown loss '%s' (mean_squared_error or mse, "
                             "mean_absolute_error or mae, huber, binary_crossentropy, "
                             "categorical_crossentropy, sparse_categorical_crossentropy)",
                             c->loss);
        for (int i = 0; i < LM_MAX_IO; i++) losses[i] = l;
    } else if (!compiled) {
        return cli_usage(cmd, "the model has no compile_config: give --loss");
    }
    if (c->metrics) {
        if (parse_metrics(cmd, c->metrics, metrics, LM_MAX_METRICS) != CLI_OK) return CLI_USAGE;
    } else if (compiled) {
        for (int i = 0; i < t->n_metric_kinds; i++) metrics[i] = t->metric_kinds[i];
        metrics[t->n_metric_kinds] = LM_METRIC_NONE;
    }
    if (c->optimizer) {
        o.optimizer = lm_optimizer_from_name(c->optimizer);
        if (!o.optimizer)
            return cli_usage(cmd,
                             "option '--optimizer': unknown optimizer '%s' (adam, adamw, sgd, "
                             "rmsprop, adagrad)",
                             c->optimizer);
    } else if (compiled) {
        o.optimizer = t->opt; /* the same optimizer keeps its state */
    }
    o.losses = losses;
    o.loss_weights = weights;
    o.metrics = metrics;
    if (compiled) {
        o.from_logits = t->from_logits;
        o.huber_delta = t->huber_delta;
        o.top_k = t->top_k;
        o.threshold = t->threshold;
    }
    if (lm_compile_(m, o) != LM_OK) return cli_fail(cmd, "compile: %s", lm_model_error(m));
    if (c->learning_rate && lm_optimizer_set_learning_rate(m->train->opt, lr) != LM_OK)
        return cli_fail(cmd, "cannot set the learning rate to %g", lr);
    return CLI_OK;
}
