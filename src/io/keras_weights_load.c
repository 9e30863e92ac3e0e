/* The staged loader shared by Keras 3 and legacy weights files: every HDF5
 * object is opened through hard links only and checked (type, rank, dims,
 * dtype, checksum) against the model before its values are read into
 * buffers sized by the model, never by the file; kw_commit copies them into
 * the weights and the optimizer once everything matched. */
#include "io/keras_weights_impl.h"
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

uint32_t kw_crc_le(const void *p, size_t n, size_t elem);
int kw_opt_slot_count(const lm_optimizer *o);
int kw_opt_order(const lm_optimizer *o, int n_train, int *slot, int *var);
bool kw_opt_built_for(const lm_optimizer *o, int n, lm_weight *const *train);

void kw_quiet_begin(kw_quiet *q) {
    if (H5Eget_auto2(H5E_DEFAULT, &q->fn, &q->data) < 0) q->fn = NULL, q->data = NULL;
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
}

void kw_quiet_end(const kw_quiet *q) {
    H5Eclear2(H5E_DEFAULT);
    H5Eset_auto2(H5E_DEFAULT, q->fn, q->data);
}

typedef struct detail_buf {
    char *p;
    size_t n;
} detail_buf;

static herr_t detail_cb(unsigned n, const H5E_error2_t *e, void *data) {
    detail_buf *d = data;
    if (n == 0 && e) { /* the innermost error: the most specific */
        if (e->desc && *e->desc)
            snprintf(d->p, d->n, "%s", e->desc);
        else if (H5Eget_msg(e->min_num, NULL, d->p, d->n) < 0)
            d->p[0] = 0;
    }
    return 0;
}

const char *kw_h5_detail(char *buf, size_t n) {
    if (!n) return buf;
    buf[0] = 0;
    detail_buf d = {buf, n};
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, detail_cb, &d);
    H5Eclear2(H5E_DEFAULT);
    return buf;
}

void kw_load_init(kw_load *L, lm_model *m, const char *who, const char *src) {
    memset(L, 0, sizeof *L);
    L->m = m;
    L->who = who;
    L->src = src;
}

void kw_load_free(kw_load *L) {
    for (int i = 0; i < L->n; i++) free(L->val[i]);
    free(L->val);
    free(L->w);
    free(L->train);
    free(L->sizes);
    for (int k = 0; k < LM_OPT_MAX_SLOTS; k++) free(L->slot[k]);
    memset(L, 0, sizeof *L);
}

lm_status kw_fail(kw_load *L, lm_status st, const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (!L->st) {
        L->st = st;
        lm_fail(L->m->ctx, st, "%s: %s: %s", L->who, L->src, msg);
    }
    return L->st;
}

hid_t kw_open(kw_load *L, hid_t loc, const char *path, H5I_type_t want, bool *missing) {
    char buf[1024], sofar[1024] = "";
    if (!path || !*path || snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf) {
        kw_fail(L, LM_ERR_ARG, "invalid object path");
        return -1;
    }
    hid_t cur = loc;
    bool own = false;
    char *save = NULL;
    char d[256];
    for (char *c = strtok_r(buf, "/", &save); c; c = strtok_r(NULL, "/", &save)) {
        size_t l = strlen(sofar);
        snprintf(sofar + l, sizeof sofar - l, "%s%s", l ? "/" : "", c);
        htri_t ex = H5Lexists(cur, c, H5P_DEFAULT);
#if H5_VERSION_GE(1, 12, 0)
        H5L_info1_t li;
#define KW_LINK_INFO H5Lget_info1
#else
        H5L_info_t li;
#define KW_LINK_INFO H5Lget_info
#endif
        hid_t next = -1;
        if (ex == 0 && missing) {
            *missing = true;
        } else if (ex <= 0) {
            if (ex == 0)
                kw_fail(L, LM_ERR_IO, "%s is missing", sofar);
            else
                kw_fail(L, LM_ERR_IO, "the file is corrupt: cannot look up %s (%s)", sofar,
                        kw_h5_detail(d, sizeof d));
        } else if (KW_LINK_INFO(cur, c, &li, H5P_DEFAULT) < 0) {
            kw_fail(L, LM_ERR_IO, "the file is corrupt: cannot read the link %s (%s)", sofar,
                    kw_h5_detail(d, sizeof d));
        } else if (li.type != H5L_TYPE_HARD) {
            kw_fail(L, LM_ERR_IO,
                    "%s is a soft or external link; weights must be stored in the file", sofar);
        } else if (!kw_link_target_ok(cur, (uint64_t)li.u.address)) {
            kw_fail(L, LM_ERR_IO,
                    "the file is corrupt, or uses HDF5 features Keras files never use (external "
                    "links, shared messages, filters), in the object header of %s",
                    sofar);
        } else if ((next = H5Oopen(cur, c, H5P_DEFAULT)) < 0) {
            kw_fail(L, LM_ERR_IO, "the file is corrupt: cannot open %s (%s)", sofar,
                    kw_h5_detail(d, sizeof d));
        }
        if (own) H5Oclose(cur);
        if (next < 0) return -1;
        cur = next;
        own = true;
        H5I_type_t t = H5Iget_type(cur);
        bool last = !save || strspn(save, "/") == strlen(save);
        if (t != H5I_GROUP && (!last || t != want)) {
            kw_fail(L, LM_ERR_IO, "%s is not a %s", sofar,
                    want == H5I_DATASET ? "dataset or group" : "group");
            H5Oclose(cur);
            return -1;
        }
    }
    if (!own) {
        kw_fail(L, LM_ERR_ARG, "invalid object path %s", path);
        return -1;
    }
    if (H5Iget_type(cur) != want) {
        kw_fail(L, LM_ERR_IO, "%s is a %s, not a %s", path,
                H5Iget_type(cur) == H5I_GROUP ? "group" : "dataset",
                want == H5I_GROUP ? "group" : "dataset");
        H5Oclose(cur);
        return -1;
    }
    return cur;
}

/* Checks ds against shape want and a numeric class, then reads it as dt
 * into dst. what names the destination in messages. */
static lm_status read_ds(kw_load *L, hid_t ds, const char *where, lm_shape want, lm_dtype dt,
                         void *dst, const char *what) {
    char a[96], b[96], d[256];
    hid_t sp = H5Dget_space(ds), t = H5Dget_type(ds);
    lm_status st = LM_OK;
    if (sp < 0 || t < 0) {
        st = kw_fail(L, LM_ERR_IO, "the file is corrupt: cannot read the type or shape of %s (%s)",
                     where, kw_h5_detail(d, sizeof d));
        goto done;
    }
    H5S_class_t sc = H5Sget_simple_extent_type(sp);
    int nd = sc == H5S_SCALAR ? 0 : sc == H5S_SIMPLE ? H5Sget_simple_extent_ndims(sp) : -1;
    hsize_t dims[H5S_MAX_RANK];
    lm_shape got = {0, {0}};
    if (nd < 0 || nd > LM_MAX_DIMS || (nd > 0 && H5Sget_simple_extent_dims(sp, dims, NULL) != nd)) {
        st = kw_fail(L, LM_ERR_SHAPE, "%s has an unsupported dataspace (%d dimensions) for %s",
                     where, nd, what);
        goto done;
    }
    got.ndim = nd;
    bool same = nd == want.ndim;
    for (int i = 0; i < nd; i++) {
        got.dims[i] = dims[i] > (hsize_t)INT64_MAX ? -1 : (int64_t)dims[i];
        same = same && got.dims[i] == want.dims[i];
    }
    if (!same) {
        st = kw_fail(L, LM_ERR_SHAPE, "%s has shape %s but %s has shape %s", where,
                     lm_shape_str(got, a, sizeof a), what, lm_shape_str(want, b, sizeof b));
        goto done;
    }
    H5T_class_t tc = H5Tget_class(t);
    size_t ts = H5Tget_size(t);
    /* HDF5 allocates a whole chunk to read one: none larger than the data. */
    hid_t dcpl = H5Dget_create_plist(ds);
    bool chunk_ok = dcpl >= 0;
    if (chunk_ok && H5Pget_layout(dcpl) == H5D_CHUNKED) {
        hsize_t cd[H5S_MAX_RANK];
        int cr = H5Pget_chunk(dcpl, H5S_MAX_RANK, cd);
        chunk_ok = cr == nd;
        for (int i = 0; chunk_ok && i < cr; i++) chunk_ok = cd[i] <= (dims[i] ? dims[i] : 1);
    }
    if (dcpl >= 0) H5Pclose(dcpl);
    if (!chunk_ok) {
        st =
            kw_fail(L, LM_ERR_IO, "the file is corrupt: %s has chunks larger than its data", where);
        goto done;
    }
    bool want_int = dt == LM_I64 || dt == LM_I32;
    bool ok = want_int ? tc == H5T_INTEGER && ts >= 1 && ts <= 8
                       : tc == H5T_FLOAT && (ts == 2 || ts == 4 || ts == 8);
    if (!ok) {
        bool bf16 = H5Aexists(ds, "dtype") > 0;
        st = kw_fail(L, LM_ERR_SHAPE, "%s holds %s data of %zu bytes%s; %s needs %s", where,
                     tc == H5T_FLOAT     ? "floating-point"
                     : tc == H5T_INTEGER ? "integer"
                     : tc == H5T_STRING  ? "string"
                                         : "non-numeric",
                     ts, bf16 ? " (bfloat16 is not supported)" : "", what,
                     want_int ? "integers" : "floating-point values");
        goto done;
    }
    hid_t mt = dt == LM_F32   ? H5T_NATIVE_FLOAT
               : dt == LM_F64 ? H5T_NATIVE_DOUBLE
               : dt == LM_I32 ? H5T_NATIVE_INT32
                              : H5T_NATIVE_INT64;
    int64_t numel = lm_shape_numel(want);
    if (numel > 0 && H5Dread(ds, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, dst) < 0) {
        st = kw_fail(L, LM_ERR_IO, "the file is corrupt: cannot read %s (%s)", where,
                     kw_h5_detail(d, sizeof d));
        goto done;
    }
    /* Lamina's checksum, over the values as stored when the widths agree. */
    size_t es = lm_dtype_size(dt);
    htri_t has = H5Aexists(ds, "lamina_crc32");
    if (has > 0 && ts == es) {
        hid_t at = H5Aopen(ds, "lamina_crc32", H5P_DEFAULT);
        hid_t asp = at < 0 ? -1 : H5Aget_space(at), aty = at < 0 ? -1 : H5Aget_type(at);
        uint32_t crc = 0;
        bool good = at >= 0 && asp >= 0 && aty >= 0 && H5Tget_class(aty) == H5T_INTEGER &&
                    H5Sget_simple_extent_type(asp) == H5S_SCALAR &&
                    H5Aread(at, H5T_NATIVE_UINT32, &crc) >= 0;
        if (aty >= 0) H5Tclose(aty);
        if (asp >= 0) H5Sclose(asp);
        if (at >= 0) H5Aclose(at);
        uint32_t got_crc = kw_crc_le(dst, (size_t)numel * es, es);
        if (!good)
            st = kw_fail(L, LM_ERR_IO,
                         "the file is corrupt: the lamina_crc32 attribute of %s is unreadable",
                         where);
        else if (crc != got_crc)
            st = kw_fail(L, LM_ERR_IO,
                         "the file is corrupt: the data of %s has CRC-32 %08x, the file recorded "
                         "%08x",
                         where, got_crc, crc);
    } else if (has < 0) {
        st = kw_fail(L, LM_ERR_IO, "the file is corrupt: cannot read the attributes of %s (%s)",
                     where, kw_h5_detail(d, sizeof d));
    }
done:
    if (t >= 0) H5Tclose(t);
    if (sp >= 0) H5Sclose(sp);
    return st;
}

lm_status kw_stage_weight(kw_load *L, hid_t ds, const char *where, const lm_layer *owner,
                          lm_weight *w) {
    if (L->n == L->cap) {
        int cap = L->cap ? 2 * L->cap : 16;
        lm_weight **nw = realloc(L->w, (size_t)cap * sizeof *nw);
        if (nw) L->w = nw;
        float **nv = realloc(L->val, (size_t)cap * sizeof *nv);
        if (nv) L->val = nv;
        if (!nw || !nv) return kw_fail(L, LM_ERR_OOM, "out of memory");
        L->cap = cap;
    }
    lm_dtype dt = lm_tensor_dtype(w->value);
    lm_shape s = lm_tensor_shape(w->value);
    char what[256];
    snprintf(what, sizeof what, "weight %s of layer '%s' (%s)", w->name, owner ? owner->name : "?",
             owner ? owner->vt->class_name : "?");
    if (dt != LM_F32 && dt != LM_F64)
        return kw_fail(L, LM_ERR_ARG, "%s is %s; only float weights can be loaded", what,
                       lm_dtype_name(dt));
    size_t bytes = (size_t)lm_shape_numel(s) * lm_dtype_size(dt);
    void *buf = malloc(bytes ? bytes : 1);
    if (!buf) return kw_fail(L, LM_ERR_OOM, "out of memory reading %s", where);
    lm_status st = read_ds(L, ds, where, s, dt, buf, what);
    if (st) {
        free(buf);
        return st;
    }
    L->w[L->n] = w;
    L->val[L->n++] = buf;
    return LM_OK;
}

static void opt_name(const lm_optimizer *o, char *out, size_t n) {
    static const char *cls[] = {[LM_OPT_SGD] = "SGD",
                                [LM_OPT_ADAM] = "Adam",
                                [LM_OPT_ADAMW] = "AdamW",
                                [LM_OPT_RMSPROP] = "RMSprop",
                                [LM_OPT_ADAGRAD] = "Adagrad"};
    lm_keras_snake_case(cls[o->kind], out, n);
}

lm_status kw_stage_optimizer(kw_load *L, int n, const hid_t *ds, const char *const *names,
                             bool strict) {
    lm_model *m = L->m;
    lm_optimizer *o = m->train->opt;
    int nw = lm_model_weights(m, NULL, 0), nt = 0;
    lm_weight **all = malloc((size_t)(nw + 1) * sizeof *all);
    lm_weight **kt = malloc((size_t)(nw + 1) * sizeof *kt);
    int *slot = malloc(((size_t)nw * LM_OPT_MAX_SLOTS + 1) * sizeof *slot);
    int *var = malloc(((size_t)nw * LM_OPT_MAX_SLOTS + 1) * sizeof *var);
    int64_t *off = malloc((size_t)(nw + 1) * sizeof *off);
    lm_status st = LM_OK;
    if (!all || !kt || !slot || !var || !off) {
        st = kw_fail(L, LM_ERR_OOM, "out of memory");
        goto done;
    }
    lm_model_weights(m, all, nw);
    for (int i = 0; i < nw; i++)
        if (all[i]->trainable) all[nt++] = all[i];
    int nk = kw_keras_trainable(m, kt, nw);
    if (nk != nt) {
        st = kw_fail(L, LM_ERR_STATE, "internal: trainable weights disagree");
        goto done;
    }
    char oname[32];
    opt_name(o, oname, sizeof oname);
    bool has_lr = !o->schedule, built = kw_opt_built_for(o, nt, all);
    int ns = kw_opt_slot_count(o);
    int64_t n_built = 1 + has_lr + (int64_t)ns * nt, cur = built ? n_built : 1 + has_lr;
    bool full;
    if (n == cur)
        full = built;
    else if (n == n_built)
        full = true;
    else if (strict) {
        st = kw_fail(L, LM_ERR_STATE,
                     "the optimizer state holds %d variables; %s's %s needs %lld (another "
                     "optimizer or model wrote it)",
                     n, m->name, oname, (long long)n_built);
        goto done;
    } else {
        /* Keras's optimizer.load_own_variables: a warning, nothing loaded. */
        fprintf(stderr,
                "UserWarning: Skipping variable loading for optimizer '%s', because it has %lld "
                "variables whereas the saved optimizer has %d variables. \n",
                oname, (long long)cur, n);
        goto done;
    }
    if (strict && !full) {
        st = kw_fail(L, LM_ERR_STATE,
                     "the file holds no optimizer state beyond iterations and learning rate "
                     "(its optimizer was never built)");
        goto done;
    }
    char what[256];
    int64_t it = 0;
    float lr = 0;
    snprintf(what, sizeof what, "the iteration count of %s's %s", m->name, oname);
    if ((st = read_ds(L, ds[0], names[0], LM_SCALAR, LM_I64, &it, what))) goto done;
    if (it < 0) {
        st = kw_fail(L, LM_ERR_IO, "%s holds a negative iteration count", names[0]);
        goto done;
    }
    if (has_lr) {
        snprintf(what, sizeof what, "the learning rate of %s's %s", m->name, oname);
        if ((st = read_ds(L, ds[1], names[1], LM_SCALAR, LM_F32, &lr, what))) goto done;
        if (!(lr >= 0) || isinf(lr)) {
            st =
                kw_fail(L, LM_ERR_IO, "%s holds an invalid learning rate %g", names[1], (double)lr);
            goto done;
        }
    }
    L->sizes = malloc((size_t)(nt + 1) * sizeof *L->sizes);
    L->train = malloc((size_t)(nt + 1) * sizeof *L->train);
    if (!L->sizes || !L->train) {
        st = kw_fail(L, LM_ERR_OOM, "out of memory");
        goto done;
    }
    int64_t total = 0;
    for (int i = 0; i < nt; i++) {
        L->train[i] = all[i];
        L->sizes[i] = lm_tensor_numel(all[i]->value);
        off[i] = total;
        total += L->sizes[i];
    }
    L->n_train = nt;
    if (full && ns > 0) {
        for (int k = 0; k < ns; k++)
            if (!(L->slot[k] = malloc((size_t)(total ? total : 1) * sizeof(float)))) {
                st = kw_fail(L, LM_ERR_OOM, "out of memory for the optimizer state");
                goto done;
            }
        int np = kw_opt_order(o, nk, slot, var), base = 1 + has_lr;
        for (int p = 0; p < np && !st; p++) {
            int li = 0;
            while (li < nt && all[li] != kt[var[p]]) li++;
            const lm_weight *w = all[li];
            snprintf(what, sizeof what, "%s's slot %d for weight %s", oname, slot[p], w->name);
            st = read_ds(L, ds[base + p], names[base + p], lm_tensor_shape(w->value), LM_F32,
                         L->slot[slot[p]] + off[li], what);
        }
        if (st) goto done;
    }
    L->opt_load = true;
    L->opt_build = full && !built;
    L->iterations = it;
    L->has_lr = has_lr;
    L->lr = lr;
done:
    free(all);
    free(kt);
    free(slot);
    free(var);
    free(off);
    return st;
}

lm_status kw_commit(kw_load *L) {
    lm_model *m = L->m;
    lm_optimizer *o = m->train ? m->train->opt : NULL;
    if (L->opt_load && L->opt_build && o &&
        lm_optimizer_build(o, m->ctx, L->n_train, L->sizes) != LM_OK) {
        char msg[512];
        snprintf(msg, sizeof msg, "%s", lm_ctx_error(m->ctx));
        return kw_fail(L, LM_ERR_STATE, "cannot build the optimizer: %s", msg);
    }
    for (int i = 0; i < L->n; i++) {
        lm_tensor *v = L->w[i]->value;
        size_t bytes = (size_t)lm_tensor_numel(v) * lm_dtype_size(lm_tensor_dtype(v));
        if (lm_tensor_copy_from(v, L->val[i], bytes))
            return kw_fail(L, LM_ERR_STATE, "cannot copy into weight %s", L->w[i]->name);
    }
    if (L->opt_load && o) {
        for (int k = 0; k < o->n_slots && L->slot[k]; k++)
            memcpy(o->slot[k], L->slot[k], (size_t)o->n_params * sizeof(float));
        o->iterations = L->iterations;
        if (L->has_lr) lm_optimizer_set_learning_rate(o, (double)L->lr);
    }
    return LM_OK;
}
