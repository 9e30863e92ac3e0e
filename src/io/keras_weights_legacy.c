/* Legacy Keras HDF5 files (keras/src/legacy/saving/legacy_h5_format.py):
 * model files of model.save("x.h5") (root attributes model_config and
 * training_config, groups model_weights and optimizer_weights) and weights
 * files of save_weights("x.h5") (layer_names on the root). Weights are
 * matched by position: the model's layers that have weights, in Keras's
 * model.layers order, against the layer_names whose weight_names are not
 * empty; within a layer, trainable then non-trainable weights. */
#include "io/keras_weights_impl.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_CONFIG   ((size_t)64 << 20) /* model_config JSON */
#define MAX_NAMES    ((size_t)16 << 20) /* all names of one list */
#define MAX_ELEMENTS 1000000

void kw_str_list_free(char **list, int n) {
    for (int i = 0; list && i < n; i++) free(list[i]);
    free(list);
}

/* Every string of attribute name; the total length is at most max. */
static int read_list(hid_t obj, const char *name, size_t max, char ***out, char *err, size_t errn) {
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT), t = -1, sp = -1, mt = -1;
    char **list = NULL, **ptrs = NULL, *fixed = NULL;
    int n = -1;
    hssize_t np = -1;
    if (a < 0 || (t = H5Aget_type(a)) < 0 || (sp = H5Aget_space(a)) < 0 ||
        (np = H5Sget_simple_extent_npoints(sp)) < 0) {
        snprintf(err, errn, "cannot open attribute %s", name);
        goto done;
    }
    if (np > MAX_ELEMENTS) {
        snprintf(err, errn, "attribute %s has %lld elements", name, (long long)np);
        goto done;
    }
    list = calloc((size_t)np + 1, sizeof *list);
    if (!list) {
        snprintf(err, errn, "out of memory reading attribute %s", name);
        goto done;
    }
    hsize_t storage = H5Aget_storage_size(a);
    if (H5Tget_class(t) != H5T_STRING) {
        /* h5py stores an empty list as an empty float64 array. */
        if (np == 0)
            n = 0;
        else
            snprintf(err, errn, "attribute %s holds no strings", name);
        goto done;
    }
    htri_t vl = H5Tis_variable_str(t);
    size_t total = 0;
    if (vl > 0) {
        /* Each element is a heap reference stored in the attribute. */
        if (storage < (hsize_t)np || !kw_vlen_refs_ok(obj, name, (int64_t)np)) {
            snprintf(err, errn, "attribute %s is corrupt (its strings point outside their heap)",
                     name);
            goto done;
        }
        if ((mt = H5Tcopy(H5T_C_S1)) < 0 || H5Tset_size(mt, H5T_VARIABLE) < 0 ||
            H5Tset_cset(mt, H5Tget_cset(t)) < 0 || !(ptrs = calloc((size_t)np + 1, sizeof *ptrs)) ||
            H5Aread(a, mt, ptrs) < 0) {
            snprintf(err, errn, "cannot read attribute %s", name);
            goto vfree;
        }
        for (hssize_t i = 0; i < np; i++) {
            size_t l = ptrs[i] ? strlen(ptrs[i]) : 0;
            total += l;
            if (total > max || !(list[i] = malloc(l + 1))) {
                snprintf(err, errn, "attribute %s is too large", name);
                goto vfree;
            }
            memcpy(list[i], ptrs[i] ? ptrs[i] : "", l + 1);
        }
        n = (int)np;
    vfree:
        for (hssize_t i = 0; ptrs && i < np; i++)
            if (ptrs[i]) H5free_memory(ptrs[i]);
    } else if (vl == 0) {
        size_t sz = H5Tget_size(t);
        /* The allocation must be backed by the attribute's own storage. */
        if (sz == 0 || sz > max || (size_t)np > max / sz || storage < (hsize_t)np * sz) {
            snprintf(err, errn, "attribute %s is too large or corrupt", name);
            goto done;
        }
        /* One byte more than stored, so a string filling its width keeps its last character. */
        if ((mt = H5Tcopy(H5T_C_S1)) < 0 || H5Tset_size(mt, sz + 1) < 0 ||
            H5Tset_strpad(mt, H5T_STR_NULLTERM) < 0 ||
            !(fixed = malloc((size_t)np * (sz + 1) + 1)) || H5Aread(a, mt, fixed) < 0) {
            snprintf(err, errn, "cannot read attribute %s", name);
            goto done;
        }
        for (hssize_t i = 0; i < np; i++) {
            char *s = fixed + (size_t)i * (sz + 1);
            s[sz] = 0;
            if (!(list[i] = strdup(s))) {
                snprintf(err, errn, "out of memory reading attribute %s", name);
                goto done;
            }
        }
        n = (int)np;
    } else {
        snprintf(err, errn, "cannot read the type of attribute %s", name);
    }
done:
    free(ptrs);
    free(fixed);
    if (mt >= 0) H5Tclose(mt);
    if (sp >= 0) H5Sclose(sp);
    if (t >= 0) H5Tclose(t);
    if (a >= 0) H5Aclose(a);
    if (n < 0) {
        kw_str_list_free(list, np > 0 ? (int)np : 0);
        list = NULL;
    }
    *out = list;
    return n;
}

char *kw_attr_str(hid_t obj, const char *name, size_t max, char *err, size_t errn) {
    err[0] = 0;
    htri_t ex = H5Aexists(obj, name);
    if (ex <= 0) {
        if (ex < 0) snprintf(err, errn, "cannot look up attribute %s", name);
        return NULL;
    }
    char **list;
    int n = read_list(obj, name, max, &list, err, errn);
    if (n < 0) return NULL;
    if (n != 1) {
        snprintf(err, errn, "attribute %s holds %d strings, not one", name, n);
        kw_str_list_free(list, n);
        return NULL;
    }
    char *s = list[0];
    free(list);
    return s;
}

int kw_attr_str_list(hid_t obj, const char *name, char ***out, char *err, size_t errn) {
    err[0] = 0;
    *out = NULL;
    htri_t ex = H5Aexists(obj, name);
    if (ex < 0) {
        snprintf(err, errn, "cannot look up attribute %s", name);
        return -1;
    }
    if (ex > 0) return read_list(obj, name, MAX_NAMES, out, err, errn);
    /* Keras splits lists over 64 KB into name0, name1, ... */
    char **all = calloc(1, sizeof *all);
    int n = 0;
    if (!all) return -1;
    for (int c = 0; c < MAX_ELEMENTS; c++) {
        char key[256];
        snprintf(key, sizeof key, "%s%d", name, c);
        if (H5Aexists(obj, key) <= 0) break;
        char **part;
        int k = read_list(obj, key, MAX_NAMES, &part, err, errn);
        char **grown =
            k < 0 || n + k > MAX_ELEMENTS ? NULL : realloc(all, (size_t)(n + k + 1) * sizeof *all);
        if (!grown) {
            if (k >= 0) kw_str_list_free(part, k);
            if (!*err) snprintf(err, errn, "attribute %s is too large", name);
            kw_str_list_free(all, n);
            return -1;
        }
        all = grown;
        memcpy(all + n, part, (size_t)k * sizeof *part);
        n += k;
        free(part);
    }
    *out = all;
    return n;
}

/* ---- model files ---- */

bool lm_h5_is_legacy_model(const char *path) {
    kw_quiet q;
    kw_quiet_begin(&q);
    hid_t f = kw_open_file(NULL, "load", path);
    bool yes = f >= 0 && H5Aexists(f, "model_config") > 0;
    if (f >= 0) H5Fclose(f);
    kw_quiet_end(&q);
    return yes;
}

char *lm_h5_legacy_model_config(lm_ctx *ctx, const char *path, char **training_config) {
    if (training_config) *training_config = NULL;
    kw_quiet q;
    kw_quiet_begin(&q);
    char *cfg = NULL, err[256];
    hid_t f = kw_open_file(ctx, "load", path);
    if (f < 0) goto done;
    cfg = kw_attr_str(f, "model_config", MAX_CONFIG, err, sizeof err);
    if (!cfg) {
        lm_fail(ctx, LM_ERR_IO, "load: %s: %s", path,
                *err ? err
                     : "no model_config attribute: not a Keras model file (a weights-only file "
                       "needs lm_load_weights into a model built in code)");
        goto done;
    }
    if (training_config) {
        *training_config = kw_attr_str(f, "training_config", MAX_CONFIG, err, sizeof err);
        if (!*training_config && *err) {
            lm_fail(ctx, LM_ERR_IO, "load: %s: %s", path, err);
            free(cfg);
            cfg = NULL;
        }
    }
done:
    if (f >= 0) H5Fclose(f);
    kw_quiet_end(&q);
    return cfg;
}

/* The layers that have weights, in Keras's model.layers order. */
static int weighted_layers(lm_model *m, lm_layer **out) {
    int cap = m->n_layers + m->n_inputs + 1, k = 0;
    lm_layer **ls = malloc((size_t)cap * sizeof *ls);
    int n = ls ? lm_keras_layer_order(m, ls, NULL, cap) : -1;
    for (int i = 0; i < n && i < cap; i++)
        if (ls[i] && kw_legacy_weights(ls[i], NULL, 0) > 0) out[k++] = ls[i];
    free(ls);
    return n < 0 ? -1 : k;
}

lm_status lm_h5_legacy_load_weights(lm_model *m, const char *path) {
    if (!m) return LM_ERR_ARG;
    kw_load L;
    kw_load_init(&L, m, "load_weights", path ? path : "(null)");
    if (!kw_model_built(m))
        return kw_fail(&L, LM_ERR_STATE,
                       "model %s has not been built yet; build it before loading weights", m->name);
    kw_quiet q;
    kw_quiet_begin(&q);
    hid_t f = kw_open_file(m->ctx, "load_weights", path), g = -1;
    char **names = NULL, err[256];
    int n_names = 0, nl = 0;
    lm_layer **layers = malloc((size_t)(m->n_layers + 1) * sizeof *layers);
    lm_status st = LM_OK;
    if (f < 0) {
        st = LM_ERR_IO;
        goto done;
    }
    if (!layers || (nl = weighted_layers(m, layers)) < 0) {
        st = kw_fail(&L, LM_ERR_OOM, "out of memory");
        goto done;
    }
    if (H5Aexists(f, "layer_names") > 0) {
        g = H5Gopen2(f, "/", H5P_DEFAULT);
    } else {
        bool missing = false;
        g = kw_open(&L, f, "model_weights", H5I_GROUP, &missing);
        if (g < 0) {
            st = missing ? kw_fail(&L, LM_ERR_IO,
                                   "holds neither layer_names nor a model_weights group: not a "
                                   "Keras HDF5 weights file")
                         : L.st;
            goto done;
        }
    }
    if ((n_names = kw_attr_str_list(g, "layer_names", &names, err, sizeof err)) < 0) {
        st = kw_fail(&L, LM_ERR_IO, "%s", err);
        goto done;
    }
    /* The saved layers that have weights, and their weight names. */
    char ***wn = calloc((size_t)n_names + 1, sizeof *wn);
    int *nwn = calloc((size_t)n_names + 1, sizeof *nwn),
        *pos = calloc((size_t)n_names + 1, sizeof *pos);
    int saved = 0;
    if (!wn || !nwn || !pos) st = kw_fail(&L, LM_ERR_OOM, "out of memory");
    for (int i = 0; i < n_names && !st; i++) {
        hid_t lg = kw_open(&L, g, names[i], H5I_GROUP, NULL);
        if (lg < 0) {
            st = L.st;
            break;
        }
        nwn[i] = kw_attr_str_list(lg, "weight_names", &wn[i], err, sizeof err);
        H5Gclose(lg);
        if (nwn[i] < 0)
            st = kw_fail(&L, LM_ERR_IO, "layer %s: %s", names[i], err);
        else if (nwn[i] > 0)
            pos[saved++] = i;
    }
    if (!st && saved != nl)
        st = kw_fail(&L, LM_ERR_SHAPE,
                     "Layer count mismatch when loading weights from file. Model expected %d "
                     "layers, found %d saved layers.",
                     nl, saved);
    for (int k = 0; k < saved && !st; k++) {
        int i = pos[k];
        lm_weight *sym[2 * LM_MAX_WEIGHTS + 2];
        int ns = kw_legacy_weights(layers[k], sym, (int)(sizeof sym / sizeof *sym));
        if (ns != nwn[i]) {
            st = kw_fail(&L, LM_ERR_SHAPE,
                         "Weight count mismatch for layer #%d (named %s in the current model, %s "
                         "in the save file). Layer expects %d weight(s). Received %d saved "
                         "weight(s)",
                         k, layers[k]->name, names[i], ns, nwn[i]);
            break;
        }
        hid_t lg = kw_open(&L, g, names[i], H5I_GROUP, NULL);
        for (int j = 0; j < ns && !st && lg >= 0; j++) {
            char where[1024];
            snprintf(where, sizeof where, "%s/%s", names[i], wn[i][j]);
            hid_t ds = kw_open(&L, lg, wn[i][j], H5I_DATASET, NULL);
            if (ds < 0) break;
            /* The owner of a Bidirectional's weight is its wrapped layer. */
            const lm_layer *owner = layers[k];
            for (int w = 0; w < 2; w++) {
                const lm_layer *in = layers[k]->inner[w];
                if (in && sym[j] >= in->w && sym[j] < in->w + in->n_weights) owner = in;
            }
            kw_stage_weight(&L, ds, where, owner, sym[j]);
            H5Dclose(ds);
        }
        if (lg >= 0) H5Gclose(lg);
        st = L.st;
    }
    if (!st) st = kw_commit(&L);
    for (int i = 0; wn && i < n_names; i++) kw_str_list_free(wn[i], nwn[i] > 0 ? nwn[i] : 0);
    free(wn);
    free(nwn);
    free(pos);
done:
    kw_str_list_free(names, n_names > 0 ? n_names : 0);
    free(layers);
    if (g >= 0) H5Oclose(g);
    if (f >= 0) H5Fclose(f);
    kw_quiet_end(&q);
    kw_load_free(&L);
    return st;
}

lm_status lm_h5_legacy_load_optimizer(lm_model *m, const char *path) {
    if (!m) return LM_ERR_ARG;
    if (!m->train || !m->train->opt) return LM_OK;
    kw_load L;
    kw_load_init(&L, m, "load", path ? path : "(null)");
    kw_quiet q;
    kw_quiet_begin(&q);
    hid_t f = kw_open_file(m->ctx, "load", path), g = -1;
    char **names = NULL, err[256];
    hid_t *ds = NULL;
    int n = 0, opened = 0;
    lm_status st = LM_OK;
    bool missing = false;
    if (f < 0) {
        st = LM_ERR_IO;
        goto done;
    }
    if ((g = kw_open(&L, f, "optimizer_weights", H5I_GROUP, &missing)) < 0) {
        st = missing ? LM_OK : L.st; /* no optimizer state saved */
        goto done;
    }
    if ((n = kw_attr_str_list(g, "weight_names", &names, err, sizeof err)) < 0) {
        st = kw_fail(&L, LM_ERR_IO, "optimizer_weights: %s", err);
        goto done;
    }
    if (!(ds = calloc((size_t)n + 1, sizeof *ds))) {
        st = kw_fail(&L, LM_ERR_OOM, "out of memory");
        goto done;
    }
    for (; opened < n && !L.st; opened++)
        ds[opened] = kw_open(&L, g, names[opened], H5I_DATASET, NULL);
    if (!L.st) kw_stage_optimizer(&L, n, ds, (const char *const *)names, false);
    if (!L.st) kw_commit(&L);
    if (L.st) { /* Keras: a warning, and a fresh optimizer */
        fprintf(stderr,
                "UserWarning: Error in loading the saved optimizer state. As a result, your model "
                "is starting with a freshly initialized optimizer. (%s)\n",
                lm_ctx_error(m->ctx));
    }
done:
    for (int i = 0; ds && i < opened; i++)
        if (ds[i] >= 0) H5Dclose(ds[i]);
    free(ds);
    kw_str_list_free(names, n > 0 ? n : 0);
    if (g >= 0) H5Gclose(g);
    if (f >= 0) H5Fclose(f);
    kw_quiet_end(&q);
    kw_load_free(&L);
    return st;
}
