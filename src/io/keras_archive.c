/* .keras files: a zip holding metadata.json, config.json and
 * model.weights.h5, stored uncompressed in that order as Keras 3's
 * saving_lib writes them. The archive is built in memory (libzip over a
 * buffer source, the weights from the HDF5 core driver) and written
 * atomically: a temporary file in the same folder, fsync, rename. Reading
 * takes the whole file into memory, sizes coming from the file system; each
 * member's declared size is checked against the archive before anything is
 * allocated for it. Legacy Keras 2 .h5 model files load through the same
 * lm_load. */
#include "io/keras_config.h"
#include "io/keras_weights.h"
#include "nn/train.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zip.h>

#define KERAS_FORMAT_VERSION "3.15.1" /* the Keras whose layout these files follow */
#define MAX_ARCHIVE          ((size_t)1 << 40)
#define MAX_CONFIG           ((zip_uint64_t)64 << 20)
#define MAX_WEIGHTS          ((zip_uint64_t)1 << 40)

/* ---- saving ---- */

/* metadata.json: {"keras_version": ..., "date_saved": "%Y-%m-%d@%H:%M:%S"}. */
static char *metadata_json(void) {
    char date[64];
    time_t now = time(NULL);
    struct tm tm;
    if (!localtime_r(&now, &tm) || !strftime(date, sizeof date, "%Y-%m-%d@%H:%M:%S", &tm))
        snprintf(date, sizeof date, "1980-01-01@00:00:00");
    cJSON *o = cJSON_CreateObject();
    char *s = NULL;
    if (o && !lm_kc_put_str(o, "keras_version", KERAS_FORMAT_VERSION) &&
        !lm_kc_put_str(o, "date_saved", date) && !lm_kc_put_str(o, "saved_by", "lamina"))
        s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

static const char *zerr(zip_error_t *e) {
    return zip_error_strerror(e);
}

/* The three members zipped (stored) into *out, *out_len; NULL-safe frees. */
static lm_status build_zip(lm_ctx *ctx, const char *const *names, void *const *data,
                           const size_t *lens, int n, void **out, size_t *out_len) {
    zip_error_t ze;
    zip_error_init(&ze);
    zip_source_t *src = zip_source_buffer_create(NULL, 0, 0, &ze);
    zip_t *za = src ? zip_open_from_source(src, ZIP_TRUNCATE, &ze) : NULL;
    lm_status st = LM_OK;
    if (!za) {
        st = lm_fail(ctx, LM_ERR_OOM, "save: cannot start the archive: %s", zerr(&ze));
        zip_source_free(src);
        zip_error_fini(&ze);
        return st;
    }
    zip_source_keep(src); /* read it back after zip_close */
    for (int i = 0; i < n && !st; i++) {
        zip_source_t *s = zip_source_buffer(za, data[i], lens[i], 0);
        zip_int64_t idx =
            s ? zip_file_add(za, names[i], s, ZIP_FL_ENC_UTF_8 | ZIP_FL_OVERWRITE) : -1;
        if (idx < 0) zip_source_free(s);
        if (idx < 0 || zip_set_file_compression(za, (zip_uint64_t)idx, ZIP_CM_STORE, 0))
            st = lm_fail(ctx, LM_ERR_OOM, "save: cannot add %s to the archive: %s", names[i],
                         zip_strerror(za));
    }
    if (st) {
        zip_discard(za);
    } else if (zip_close(za)) {
        st = lm_fail(ctx, LM_ERR_OOM, "save: cannot finish the archive: %s", zip_strerror(za));
        zip_discard(za);
    }
    unsigned char *buf = NULL;
    zip_int64_t size = -1;
    if (!st && zip_source_open(src) == 0) {
        if (zip_source_seek(src, 0, SEEK_END) == 0 && (size = zip_source_tell(src)) >= 0 &&
            zip_source_seek(src, 0, SEEK_SET) == 0 && (buf = malloc(size ? (size_t)size : 1)) &&
            zip_source_read(src, buf, (zip_uint64_t)size) != size) {
            free(buf);
            buf = NULL;
        }
        zip_source_close(src);
    }
    if (!st && !buf)
        st = lm_fail(ctx, LM_ERR_OOM, "save: cannot read the archive back from memory");
    zip_source_free(src);
    zip_error_fini(&ze);
    if (st) return st;
    *out = buf;
    *out_len = (size_t)size;
    return LM_OK;
}

lm_status lm_save(lm_model *m, const char *path) {
    if (!m) return LM_ERR_ARG;
    if (!path || !*path) return lm_fail(m->ctx, LM_ERR_ARG, "save: the file path is empty");
    if (m->err)
        return lm_fail(m->ctx, m->err, "save: %s cannot be saved after an error: %s", m->name,
                       m->errmsg);
    if (!m->built)
        return lm_fail(m->ctx, LM_ERR_STATE,
                       "save: %s is not built (give it an input shape, or fit it, first)", m->name);
    lm_status st = LM_OK;
    cJSON *cfg = lm_kc_model_to_cjson(m);
    char *config = cfg ? cJSON_PrintUnformatted(cfg) : NULL, *meta = metadata_json();
    cJSON_Delete(cfg);
    void *weights = NULL, *zip = NULL;
    size_t wlen = 0, zlen = 0;
    if (!cfg)
        st = lm_model_status(m) ? lm_model_status(m) : LM_ERR_FORMAT; /* message set */
    else if (!config || !meta)
        st = lm_fail(m->ctx, LM_ERR_OOM, "save: out of memory");
    if (!st) st = lm_h5_model_weights_image(m, true, &weights, &wlen);
    if (!st) {
        const char *names[3] = {"metadata.json", "config.json", "model.weights.h5"};
        void *data[3] = {meta, config, weights};
        size_t lens[3] = {strlen(meta), strlen(config), wlen};
        st = build_zip(m->ctx, names, data, lens, 3, &zip, &zlen);
    }
    if (!st) st = lm_write_file_atomic(m->ctx, "save", path, zip, zlen);
    free(config);
    free(meta);
    free(weights);
    free(zip);
    return st;
}

/* ---- loading ---- */

/* One member, read whole after checking its declared size; NULL (with the
 * message in ctx) when absent and required, or bad. */
static void *read_member(lm_ctx *ctx, zip_t *za, const char *path, const char *name,
                         zip_uint64_t max, size_t archive_len, size_t *len, bool *absent) {
    zip_int64_t idx = zip_name_locate(za, name, 0);
    *len = 0;
    if (absent) *absent = idx < 0;
    if (idx < 0) {
        if (!absent)
            lm_fail(ctx, LM_ERR_FORMAT, "load: %s has no %s: not a Keras 3 .keras file", path,
                    name);
        return NULL;
    }
    zip_stat_t zs;
    zip_stat_init(&zs);
    if (zip_stat_index(za, (zip_uint64_t)idx, 0, &zs) || !(zs.valid & ZIP_STAT_SIZE) ||
        !(zs.valid & ZIP_STAT_COMP_SIZE) || !(zs.valid & ZIP_STAT_COMP_METHOD)) {
        lm_fail(ctx, LM_ERR_FORMAT, "load: %s: cannot read the entry of %s: %s", path, name,
                zip_strerror(za));
        return NULL;
    }
    /* Stored members hold their size; deflate expands at most ~1032 times. */
    bool stored = zs.comp_method == ZIP_CM_STORE, deflated = zs.comp_method == ZIP_CM_DEFLATE;
    zip_uint64_t bound = stored ? zs.comp_size : zs.comp_size * 1040 + 1024;
    if (!stored && !deflated) {
        lm_fail(ctx, LM_ERR_UNSUPPORTED,
                "load: %s: %s uses compression method %d (stored and deflate are read)", path, name,
                (int)zs.comp_method);
        return NULL;
    }
    if (zs.comp_size > archive_len || zs.size > bound || zs.size > max) {
        lm_fail(ctx, LM_ERR_FORMAT,
                "load: %s: %s declares %llu bytes (%llu compressed) in a %zu-byte archive%s", path,
                name, (unsigned long long)zs.size, (unsigned long long)zs.comp_size, archive_len,
                zs.size > max ? ", more than Lamina reads" : "");
        return NULL;
    }
    zip_file_t *zf = zip_fopen_index(za, (zip_uint64_t)idx, 0);
    unsigned char *buf = zf ? malloc(zs.size + 1) : NULL;
    zip_int64_t got = buf ? zip_fread(zf, buf, zs.size) : -1;
    char extra;
    bool ok = got >= 0 && (zip_uint64_t)got == zs.size && zip_fread(zf, &extra, 1) == 0;
    if (!ok)
        lm_fail(ctx, zf && !buf ? LM_ERR_OOM : LM_ERR_FORMAT, "load: %s: cannot read %s: %s", path,
                name, zf ? zip_file_strerror(zf) : zip_strerror(za));
    if (zf) zip_fclose(zf);
    if (!ok) {
        free(buf);
        return NULL;
    }
    buf[zs.size] = 0; /* JSON members are parsed as text */
    *len = (size_t)zs.size;
    return buf;
}

static lm_model *load_keras(lm_ctx *ctx, const char *path, const void *data, size_t len) {
    zip_error_t ze;
    zip_error_init(&ze);
    zip_source_t *src = zip_source_buffer_create(data, len, 0, &ze);
    zip_t *za = src ? zip_open_from_source(src, ZIP_RDONLY | ZIP_CHECKCONS, &ze) : NULL;
    if (!za) {
        lm_fail(ctx, LM_ERR_FORMAT, "load: %s is not a readable zip archive: %s", path, zerr(&ze));
        zip_source_free(src);
        zip_error_fini(&ze);
        return NULL;
    }
    zip_error_fini(&ze);
    size_t clen = 0, wlen = 0;
    bool absent = false;
    char *config = read_member(ctx, za, path, "config.json", MAX_CONFIG, len, &clen, NULL);
    void *weights =
        config ? read_member(ctx, za, path, "model.weights.h5", MAX_WEIGHTS, len, &wlen, &absent)
               : NULL;
    lm_model *m = NULL;
    if (config && (weights || absent)) {
        /* The weights stored bound the weights the config may create. */
        lm_kc_reader r = {.param_budget = (int64_t)(wlen / 4) + 4096};
        cJSON *root = lm_kc_parse(config, clen);
        if (!root)
            lm_kc_fail(&r, LM_ERR_FORMAT, "config.json is not valid JSON");
        else
            m = lm_kc_model_from_cjson(&r, root, NULL);
        cJSON_Delete(root);
        if (!m) lm_fail(ctx, r.st, "load: %s: %s", path, r.err);
    }
    if (m && !m->built) { /* weights need the layers built */
        lm_fail(ctx, LM_ERR_FORMAT,
                "load: %s: the Sequential model has no input shape (no InputLayer or "
                "build_input_shape)",
                path);
        lm_model_free(m);
        m = NULL;
    } else if (m && !weights) {
        /* Keras saves a model without weights only when it has none. */
        if (lm_model_weight_count(m) > 0) {
            lm_fail(ctx, LM_ERR_FORMAT, "load: %s has no model.weights.h5 for a model with weights",
                    path);
            lm_model_free(m);
            m = NULL;
        }
    } else if (m && lm_h5_load_model_weights_image(m, weights, wlen, true)) {
        lm_fail(ctx, LM_ERR_FORMAT, "load: %s: %s", path, lm_ctx_error(m->ctx));
        lm_model_free(m);
        m = NULL;
    }
    free(config);
    free(weights);
    zip_discard(za); /* frees src */
    return m;
}

static lm_model *load_legacy(lm_ctx *ctx, const char *path, size_t file_len) {
    char *training = NULL;
    char *config = lm_h5_legacy_model_config(ctx, path, &training);
    if (!config) return NULL;
    lm_kc_reader r = {.param_budget = (int64_t)(file_len / 4) + 4096};
    cJSON *root = lm_kc_parse(config, strlen(config)),
          *tc = training ? lm_kc_parse(training, strlen(training)) : NULL;
    lm_model *m = NULL;
    if (!root)
        lm_kc_fail(&r, LM_ERR_FORMAT, "the model_config attribute is not valid JSON");
    else if (training && !tc)
        lm_kc_fail(&r, LM_ERR_FORMAT, "the training_config attribute is not valid JSON");
    else
        m = lm_kc_model_from_cjson(&r, root, tc);
    if (!m) lm_fail(ctx, r.st, "load: %s: %s", path, r.err);
    if (m && (lm_h5_legacy_load_weights(m, path) ||
              (m->train && m->train->compiled && lm_h5_legacy_load_optimizer(m, path)))) {
        lm_fail(ctx, LM_ERR_FORMAT, "load: %s: %s", path, lm_ctx_error(m->ctx));
        lm_model_free(m);
        m = NULL;
    }
    cJSON_Delete(root);
    cJSON_Delete(tc);
    free(config);
    free(training);
    return m;
}

lm_model *lm_load(const char *path) {
    lm_ctx *ctx = lm_ctx_new();
    if (!ctx) {
        lm_kc_set_error("load: out of memory");
        return NULL;
    }
    lm_model *m = NULL;
    void *data = NULL;
    size_t len = 0;
    if (!path || !*path) {
        lm_fail(ctx, LM_ERR_ARG, "load: the file path is empty");
    } else if (!lm_read_file_all(ctx, "load", path, MAX_ARCHIVE, &data, &len)) {
        static const unsigned char zip_magic[4] = {'P', 'K', 3, 4}, empty_zip[4] = {'P', 'K', 5, 6};
        static const unsigned char h5_magic[8] = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};
        if (len >= 4 && (!memcmp(data, zip_magic, 4) || !memcmp(data, empty_zip, 4))) {
            m = load_keras(ctx, path, data, len);
        } else if (len >= 8 && !memcmp(data, h5_magic, 8)) {
            free(data);
            data = NULL;
            if (lm_h5_is_legacy_model(path))
                m = load_legacy(ctx, path, len);
            else
                lm_fail(ctx, LM_ERR_FORMAT,
                        "load: %s is an HDF5 file without a model_config: a weights file? "
                        "(load it with lm_load_weights into a model)",
                        path);
        } else {
            lm_fail(ctx, LM_ERR_FORMAT, "load: %s is neither a .keras archive nor a Keras .h5 file",
                    path);
        }
    }
    free(data);
    lm_kc_set_error(m ? "" : lm_ctx_error(ctx));
    lm_ctx_free(ctx);
    return m;
}

lm_model *lm_model_from_json_file(const char *path) {
    lm_ctx *ctx = lm_ctx_new();
    if (!ctx) {
        lm_kc_set_error("model_from_json: out of memory");
        return NULL;
    }
    void *data = NULL;
    size_t len = 0;
    lm_model *m = NULL;
    if (!lm_read_file_all(ctx, "model_from_json", path, MAX_CONFIG, &data, &len)) {
        lm_kc_reader r = {0};
        cJSON *root = lm_kc_parse(data, len);
        if (!root)
            lm_kc_fail(&r, LM_ERR_FORMAT, "the file is not valid JSON");
        else
            m = lm_kc_model_from_cjson(&r, root, NULL);
        cJSON_Delete(root);
        if (!m) lm_fail(ctx, r.st, "model_from_json: %s: %s", path, r.err);
    }
    free(data);
    lm_kc_set_error(m ? "" : lm_ctx_error(ctx));
    lm_ctx_free(ctx);
    return m;
}
