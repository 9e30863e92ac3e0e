/* Weights files (lm_save_weights / lm_load_weights) and the container they
 * share with BackupAndRestore. Until Keras's .weights.h5 layout is written,
 * the format is Lamina's own; every integer is little-endian:
 *
 *   header, 32 bytes:
 *     0  magic "\x89LMW\r\n\x1a\n" (catches text-mode and 7-bit damage)
 *     8  u32 version (1)
 *    12  u32 kind (1 weights, 2 BackupAndRestore training state)
 *    16  u64 payload bytes (everything after the header)
 *    24  u32 record count
 *    28  u32 CRC-32 (zlib) of the payload
 *   payload: per record
 *     u16 name length (1..1024), the name (no NUL), u8 dtype (lm_dtype value),
 *     u8 ndim (0..8), u64 dims[ndim], then the elements in C order.
 *
 * Writes are atomic: a temporary file in the target's directory is written,
 * flushed and fsync'd, renamed over the target, and the directory fsync'd, so
 * a crash leaves either the old file or the new one. Reads take the size from
 * fstat, never from the header, validate everything before touching the
 * model, and copy nothing unless every record matches. */
#include "nn/callbacks/cb_impl.h"
#include "core/tensor_impl.h"
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#define HEADER_BYTES 32
#define VERSION      1u
static const unsigned char MAGIC[8] = {0x89, 'L', 'M', 'W', '\r', '\n', 0x1a, '\n'};

static bool host_le(void) {
    const uint16_t one = 1;
    return *(const unsigned char *)&one == 1;
}

static void put_le(unsigned char *p, uint64_t v, int bytes) {
    for (int i = 0; i < bytes; i++) p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t get_le(const unsigned char *p, int bytes) {
    uint64_t v = 0;
    for (int i = 0; i < bytes; i++) v |= (uint64_t)p[i] << (8 * i);
    return v;
}

static void swap_elems(unsigned char *p, size_t n, size_t size) {
    for (size_t i = 0; i < n; i++, p += size)
        for (size_t a = 0, b = size - 1; a < b; a++, b--) {
            unsigned char t = p[a];
            p[a] = p[b];
            p[b] = t;
        }
}

static uLong crc_update(uLong crc, const void *p, size_t n) {
    const Bytef *b = p;
    while (n > 0) { /* zlib takes uInt lengths */
        uInt k = n > (1u << 30) ? (1u << 30) : (uInt)n;
        crc = crc32(crc, b, k);
        b += k;
        n -= k;
    }
    return crc;
}

/* ---- writing ---- */

typedef struct writer {
    FILE *f;
    uLong crc;
    uint64_t bytes;
    bool failed;
    int err; /* errno of the first failure */
} writer;

static void wr(writer *w, const void *p, size_t n) {
    if (w->failed || n == 0) return;
    if (fwrite(p, 1, n, w->f) != n) {
        w->failed = true;
        w->err = errno;
    }
    w->crc = crc_update(w->crc, p, n);
    w->bytes += n;
}

static void wr_data(writer *w, const void *p, size_t n, size_t size) {
    if (host_le() || size == 1) {
        wr(w, p, n * size);
        return;
    }
    unsigned char buf[4096];
    size_t per = sizeof buf / size;
    for (size_t i = 0; i < n; i += per) {
        size_t k = n - i < per ? n - i : per;
        memcpy(buf, (const unsigned char *)p + i * size, k * size);
        swap_elems(buf, k, size);
        wr(w, buf, k * size);
    }
}

/* Directory part of path ("." when there is none). */
static void dir_of(const char *path, char *dir, size_t n) {
    const char *slash = strrchr(path, '/');
    if (!slash)
        snprintf(dir, n, ".");
    else if (slash == path)
        snprintf(dir, n, "/");
    else
        snprintf(dir, n, "%.*s", (int)(slash - path), path);
}

static lm_status check_records(lm_ctx *ctx, const char *who, int n, const lm_wrec *recs) {
    for (int i = 0; i < n; i++) {
        size_t len = recs[i].name ? strlen(recs[i].name) : 0;
        if (len == 0 || len > LM_WREC_NAME_MAX)
            return lm_fail(ctx, LM_ERR_ARG, "%s: record %d has an empty or too long name", who, i);
        if ((unsigned)recs[i].dt >= LM_DTYPE_COUNT || recs[i].shape.ndim < 0 ||
            recs[i].shape.ndim > LM_MAX_DIMS || lm_shape_numel(recs[i].shape) < 0)
            return lm_fail(ctx, LM_ERR_ARG, "%s: record %s has an invalid dtype or shape", who,
                           recs[i].name);
    }
    return LM_OK;
}

lm_status lm_wfile_write(lm_ctx *ctx, const char *who, const char *path, uint32_t kind, int n,
                         const lm_wrec *recs) {
    if (!path || !*path) return lm_fail(ctx, LM_ERR_ARG, "%s: the file path is empty", who);
    lm_status st = check_records(ctx, who, n, recs);
    if (st) return st;
    size_t plen = strlen(path);
    char *tmp = malloc(plen + 16);
    if (!tmp) return lm_fail(ctx, LM_ERR_OOM, "%s: out of memory", who);
    snprintf(tmp, plen + 16, "%s.tmpXXXXXX", path);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        st = lm_fail(ctx, LM_ERR_IO, "%s: cannot create a temporary file next to %s: %s", who, path,
                     strerror(errno));
        free(tmp);
        return st;
    }
    /* mkstemp makes the file 0600; keep the mode a replaced file had. */
    struct stat old;
    (void)fchmod(fd, stat(path, &old) == 0 ? (old.st_mode & 07777) : 0644);
    writer w = {fdopen(fd, "wb"), crc32(0L, Z_NULL, 0), 0, false, 0};
    if (!w.f) {
        close(fd);
        goto io_fail;
    }
    unsigned char hdr[HEADER_BYTES] = {0};
    if (fwrite(hdr, 1, sizeof hdr, w.f) != sizeof hdr) w.failed = true, w.err = errno;
    for (int i = 0; i < n && !w.failed; i++) {
        const lm_wrec *r = &recs[i];
        unsigned char b[2 + 2 + 8 * LM_MAX_DIMS];
        size_t len = strlen(r->name);
        put_le(b, len, 2);
        wr(&w, b, 2);
        wr(&w, r->name, len);
        b[0] = (unsigned char)r->dt;
        b[1] = (unsigned char)r->shape.ndim;
        for (int d = 0; d < r->shape.ndim; d++)
            put_le(b + 2 + 8 * d, (uint64_t)r->shape.dims[d], 8);
        wr(&w, b, 2 + 8 * (size_t)r->shape.ndim);
        wr_data(&w, r->data, (size_t)lm_shape_numel(r->shape), lm_dtype_size(r->dt));
    }
    memcpy(hdr, MAGIC, 8);
    put_le(hdr + 8, VERSION, 4);
    put_le(hdr + 12, kind, 4);
    put_le(hdr + 16, w.bytes, 8);
    put_le(hdr + 24, (uint64_t)n, 4);
    put_le(hdr + 28, w.crc, 4);
    if (!w.failed && (fseek(w.f, 0, SEEK_SET) || fwrite(hdr, 1, sizeof hdr, w.f) != sizeof hdr))
        w.failed = true, w.err = errno;
    /* The data must be on disk before the rename makes it the file. */
    if (!w.failed && (fflush(w.f) || fsync(fileno(w.f)))) w.failed = true, w.err = errno;
    if (fclose(w.f) && !w.failed) w.failed = true, w.err = errno;
    if (w.failed) {
        errno = w.err;
        goto io_fail;
    }
    if (rename(tmp, path)) goto io_fail;
    free(tmp);
    /* And the rename must reach the directory. */
    char dir[4096];
    dir_of(path, dir, sizeof dir);
    int dfd = open(dir, O_RDONLY);
    if (dfd >= 0) {
        (void)fsync(dfd);
        close(dfd);
    }
    return LM_OK;
io_fail:
    st = lm_fail(ctx, LM_ERR_IO, "%s: cannot write %s: %s", who, path, strerror(errno));
    unlink(tmp);
    free(tmp);
    return st;
}

/* ---- reading ---- */

void lm_wfile_free(lm_wfile *f) {
    if (!f) return;
    free(f->rec);
    free(f->names);
    free(f->payload);
    memset(f, 0, sizeof *f);
}

const lm_wrec *lm_wfile_find(const lm_wfile *f, const char *name) {
    for (int i = 0; i < f->n; i++)
        if (!strcmp(f->rec[i].name, name)) return &f->rec[i];
    return NULL;
}

static const char *kind_name(uint32_t kind) {
    return kind == LM_WFILE_WEIGHTS  ? "a weights file"
           : kind == LM_WFILE_BACKUP ? "a BackupAndRestore training state"
                                     : "an unknown kind of file";
}

/* Parses the records of a payload whose CRC matched; every length is checked
 * against the bytes left before it is used. */
static lm_status parse(lm_ctx *ctx, const char *who, const char *path, lm_wfile *f, size_t psize,
                       uint64_t count) {
    /* A record takes at least 5 bytes: no valid count exceeds that bound. */
    if (count > psize / 5)
        return lm_fail(ctx, LM_ERR_IO, "%s: %s is corrupt: %llu records cannot fit in %zu bytes",
                       who, path, (unsigned long long)count, psize);
    f->rec = calloc(count ? (size_t)count : 1, sizeof *f->rec);
    f->names = malloc(psize + (size_t)count + 1);
    if (!f->rec || !f->names)
        return lm_fail(ctx, LM_ERR_OOM, "%s: out of memory reading %s", who, path);
    const unsigned char *p = f->payload;
    size_t left = psize;
    char *nm = f->names;
    for (uint64_t i = 0; i < count; i++) {
        lm_wrec *r = &f->rec[i];
        if (left < 2) goto short_rec;
        size_t len = (size_t)get_le(p, 2);
        if (len == 0 || len > LM_WREC_NAME_MAX)
            return lm_fail(ctx, LM_ERR_IO, "%s: %s is corrupt: record %llu has a name of %zu bytes",
                           who, path, (unsigned long long)i, len);
        if (left < 2 + len + 2) goto short_rec;
        memcpy(nm, p + 2, len);
        nm[len] = 0;
        r->name = nm;
        nm += len + 1;
        p += 2 + len;
        left -= 2 + len;
        unsigned dt = p[0], nd = p[1];
        p += 2;
        left -= 2;
        if (dt >= LM_DTYPE_COUNT || nd > LM_MAX_DIMS)
            return lm_fail(ctx, LM_ERR_IO, "%s: %s is corrupt: record %s has dtype %u and %u dims",
                           who, path, r->name, dt, nd);
        if (left < 8 * (size_t)nd) goto short_rec;
        r->dt = (lm_dtype)dt;
        r->shape.ndim = (int)nd;
        size_t numel = 1, bytes;
        for (unsigned d = 0; d < nd; d++) {
            uint64_t v = get_le(p + 8 * d, 8);
            if (v > (uint64_t)INT64_MAX || v > SIZE_MAX || lm_mul_size(numel, (size_t)v, &numel))
                goto short_rec;
            r->shape.dims[d] = (int64_t)v;
        }
        p += 8 * (size_t)nd;
        left -= 8 * (size_t)nd;
        if (lm_mul_size(numel, lm_dtype_size(r->dt), &bytes) || bytes > left) goto short_rec;
        r->data = p;
        if (!host_le()) swap_elems((unsigned char *)p, numel, lm_dtype_size(r->dt));
        p += bytes;
        left -= bytes;
        f->n++;
        continue;
    short_rec:
        return lm_fail(ctx, LM_ERR_IO,
                       "%s: %s is corrupt: record %llu runs past the end of the data", who, path,
                       (unsigned long long)i);
    }
    if (left)
        return lm_fail(ctx, LM_ERR_IO, "%s: %s is corrupt: %zu bytes follow the last record", who,
                       path, left);
    return LM_OK;
}

lm_status lm_wfile_read(lm_ctx *ctx, const char *who, const char *path, uint32_t kind,
                        lm_wfile *f) {
    memset(f, 0, sizeof *f);
    if (!path || !*path) return lm_fail(ctx, LM_ERR_ARG, "%s: the file path is empty", who);
    FILE *fp = fopen(path, "rb");
    if (!fp) return lm_fail(ctx, LM_ERR_IO, "%s: cannot open %s: %s", who, path, strerror(errno));
    struct stat sb;
    lm_status st = LM_OK;
    unsigned char hdr[HEADER_BYTES];
    if (fstat(fileno(fp), &sb) || !S_ISREG(sb.st_mode)) {
        st = lm_fail(ctx, LM_ERR_IO, "%s: %s is not a regular file", who, path);
        goto done;
    }
    uint64_t fsize = (uint64_t)sb.st_size;
    if (fsize < HEADER_BYTES || fread(hdr, 1, HEADER_BYTES, fp) != HEADER_BYTES) {
        st = lm_fail(ctx, LM_ERR_IO,
                     "%s: %s is not a Lamina weights file (%llu bytes, shorter than the header)",
                     who, path, (unsigned long long)fsize);
        goto done;
    }
    if (memcmp(hdr, MAGIC, 8)) {
        st = lm_fail(ctx, LM_ERR_IO, "%s: %s is not a Lamina weights file (bad magic bytes)", who,
                     path);
        goto done;
    }
    uint32_t version = (uint32_t)get_le(hdr + 8, 4), fkind = (uint32_t)get_le(hdr + 12, 4);
    uint64_t psize = get_le(hdr + 16, 8), count = get_le(hdr + 24, 4);
    uint32_t crc = (uint32_t)get_le(hdr + 28, 4);
    if (version != VERSION) {
        st = lm_fail(ctx, LM_ERR_IO, "%s: %s has format version %u; this build reads version %u",
                     who, path, version, VERSION);
        goto done;
    }
    if (fkind != kind) {
        st = lm_fail(ctx, LM_ERR_IO, "%s: %s is %s, not %s", who, path, kind_name(fkind),
                     kind_name(kind));
        goto done;
    }
    if (psize != fsize - HEADER_BYTES) {
        st = lm_fail(ctx, LM_ERR_IO,
                     "%s: %s is truncated or padded: the header announces %llu bytes of data, "
                     "the file holds %llu",
                     who, path, (unsigned long long)psize,
                     (unsigned long long)(fsize - HEADER_BYTES));
        goto done;
    }
    if (psize > SIZE_MAX || !(f->payload = malloc(psize ? (size_t)psize : 1))) {
        st = lm_fail(ctx, LM_ERR_OOM, "%s: cannot allocate %llu bytes to read %s", who,
                     (unsigned long long)psize, path);
        goto done;
    }
    if (fread(f->payload, 1, (size_t)psize, fp) != (size_t)psize) {
        st = lm_fail(ctx, LM_ERR_IO, "%s: cannot read %s: %s", who, path,
                     ferror(fp) ? strerror(errno) : "unexpected end of file");
        goto done;
    }
    uint32_t got = (uint32_t)crc_update(crc32(0L, Z_NULL, 0), f->payload, (size_t)psize);
    if (got != crc) {
        st = lm_fail(ctx, LM_ERR_IO,
                     "%s: %s is corrupt (CRC-32 of the data is %08x, header says %08x)", who, path,
                     got, crc);
        goto done;
    }
    f->kind = fkind;
    st = parse(ctx, who, path, f, (size_t)psize, count);
done:
    fclose(fp);
    if (st) lm_wfile_free(f);
    return st;
}

/* ---- model weights ---- */

static int walk(lm_layer *l, const char *prefix, lm_weight **w, char (*names)[LM_WNAME], int n,
                int max) {
    /* Over-long names are cut the same way when saving and loading. */
    char pre[LM_WNAME];
    if (snprintf(pre, sizeof pre, "%s%s/", prefix, l->name ? l->name : "layer") >= LM_WNAME)
        pre[LM_WNAME - 2] = '/';
    /* Same order as lm_model_weights: wrapped layers first. */
    for (int k = 0; k < 2; k++)
        if (l->inner[k]) n = walk(l->inner[k], pre, w, names, n, max);
    for (int i = 0; i < l->n_weights; i++, n++)
        if (n < max) {
            if (w) w[n] = &l->w[i];
            if (names && snprintf(names[n], LM_WNAME, "%s%s", pre, l->w[i].name) >= LM_WNAME)
                names[n][LM_WNAME - 1] = 0;
        }
    return n;
}

int lm_model_weight_names(lm_model *m, lm_weight **w, char (*names)[LM_WNAME], int max) {
    int n = 0;
    for (int i = 0; i < m->n_layers; i++) n = walk(m->layers[i], "", w, names, n, max);
    return n;
}

int lm_wfile_model_records(lm_model *m, lm_wrec *recs, char (*names)[LM_WNAME], int n, int max,
                           lm_tensor **tmp) {
    int nw = lm_model_weight_names(m, NULL, NULL, 0);
    if (n + nw > max) return -1;
    lm_weight **w = malloc((size_t)(nw ? nw : 1) * sizeof *w);
    if (!w) return -1;
    lm_model_weight_names(m, w, names + n, nw);
    int bad = 0;
    for (int i = 0; i < nw; i++) {
        lm_tensor *v = w[i]->value;
        tmp[n + i] = lm_tensor_is_contiguous(v) ? NULL : lm_tensor_clone(v);
        if (!lm_tensor_is_contiguous(v) && !tmp[n + i]) bad = 1;
        lm_tensor *src = tmp[n + i] ? tmp[n + i] : v;
        recs[n + i] =
            (lm_wrec){names[n + i], lm_tensor_dtype(v), lm_tensor_shape(v), lm_tensor_cdata(src)};
    }
    free(w);
    return bad ? -1 : n + nw;
}

static bool same_shape(lm_shape a, lm_shape b) {
    if (a.ndim != b.ndim) return false;
    for (int d = 0; d < a.ndim; d++)
        if (a.dims[d] != b.dims[d]) return false;
    return true;
}

lm_status lm_wfile_load_model(lm_model *m, const char *who, const char *path, const lm_wfile *f,
                              int first) {
    int nw = lm_model_weight_names(m, NULL, NULL, 0);
    lm_weight **w = malloc((size_t)(nw ? nw : 1) * sizeof *w);
    char(*names)[LM_WNAME] = malloc((size_t)(nw ? nw : 1) * sizeof *names);
    lm_status st = LM_OK;
    if (!w || !names) {
        st = lm_fail(m->ctx, LM_ERR_OOM, "%s: out of memory", who);
        goto done;
    }
    lm_model_weight_names(m, w, names, nw);
    if (f->n - first < nw) {
        st = lm_fail(m->ctx, LM_ERR_SHAPE, "%s: %s holds %d weights but model %s has %d", who, path,
                     f->n - first, m->name, nw);
        goto done;
    }
    for (int i = 0; i < nw && !st; i++) {
        const lm_wrec *r = &f->rec[first + i];
        lm_shape want = lm_tensor_shape(w[i]->value);
        lm_dtype dt = lm_tensor_dtype(w[i]->value);
        char a[96], b[96];
        if (strcmp(r->name, names[i]))
            st = lm_fail(m->ctx, LM_ERR_SHAPE,
                         "%s: weight %d of model %s is %s but %s holds %s there", who, i, m->name,
                         names[i], path, r->name);
        else if (!same_shape(r->shape, want))
            st =
                lm_fail(m->ctx, LM_ERR_SHAPE, "%s: weight %s has shape %s in model %s but %s in %s",
                        who, names[i], lm_shape_str(want, a, sizeof a), m->name,
                        lm_shape_str(r->shape, b, sizeof b), path);
        else if (r->dt != dt)
            st = lm_fail(m->ctx, LM_ERR_SHAPE, "%s: weight %s is %s in model %s but %s in %s", who,
                         names[i], lm_dtype_name(dt), m->name, lm_dtype_name(r->dt), path);
    }
    /* Every record matched: only now are the weights overwritten. */
    for (int i = 0; i < nw && !st; i++) {
        const lm_wrec *r = &f->rec[first + i];
        st = lm_tensor_copy_from(w[i]->value, r->data,
                                 (size_t)lm_shape_numel(r->shape) * lm_dtype_size(r->dt));
    }
done:
    free(w);
    free(names);
    return st;
}

lm_status lm_save_weights(lm_model *m, const char *path) {
    if (!m) return LM_ERR_ARG;
    int nw = lm_model_weight_names(m, NULL, NULL, 0), cap = nw ? nw : 1;
    lm_wrec *recs = malloc((size_t)cap * sizeof *recs);
    char(*names)[LM_WNAME] = malloc((size_t)cap * sizeof *names);
    lm_tensor **tmp = calloc((size_t)cap, sizeof *tmp);
    lm_status st;
    if (!recs || !names || !tmp || lm_wfile_model_records(m, recs, names, 0, nw, tmp) != nw)
        st = lm_fail(m->ctx, LM_ERR_OOM, "save_weights: out of memory");
    else
        st = lm_wfile_write(m->ctx, "save_weights", path, LM_WFILE_WEIGHTS, nw, recs);
    for (int i = 0; tmp && i < nw; i++) lm_tensor_free(tmp[i]);
    free(tmp);
    free(names);
    free(recs);
    return st;
}

lm_status lm_load_weights(lm_model *m, const char *path) {
    if (!m) return LM_ERR_ARG;
    lm_wfile f;
    lm_status st = lm_wfile_read(m->ctx, "load_weights", path, LM_WFILE_WEIGHTS, &f);
    if (st) return st;
    int nw = lm_model_weight_names(m, NULL, NULL, 0);
    if (f.n != nw)
        st = lm_fail(m->ctx, LM_ERR_SHAPE, "load_weights: %s holds %d weights but model %s has %d",
                     path, f.n, m->name, nw);
    else
        st = lm_wfile_load_model(m, "load_weights", path, &f, 0);
    lm_wfile_free(&f);
    return st;
}

/* ---- snapshots ---- */

lm_status lm_weights_snapshot(lm_model *m, void **buf, size_t *bytes) {
    int nw = lm_model_weights(m, NULL, 0);
    lm_weight **w = malloc((size_t)(nw ? nw : 1) * sizeof *w);
    if (!w) return lm_fail(m->ctx, LM_ERR_OOM, "out of memory copying the weights");
    lm_model_weights(m, w, nw);
    size_t total = 0;
    for (int i = 0; i < nw; i++)
        total += (size_t)lm_tensor_numel(w[i]->value) * lm_dtype_size(lm_tensor_dtype(w[i]->value));
    char *p = *buf && *bytes == total ? *buf : realloc(*buf, total ? total : 1);
    if (!p) {
        free(w);
        return lm_fail(m->ctx, LM_ERR_OOM, "out of memory copying the weights");
    }
    *buf = p;
    *bytes = total;
    lm_status st = LM_OK;
    for (int i = 0; i < nw && !st; i++) {
        size_t b =
            (size_t)lm_tensor_numel(w[i]->value) * lm_dtype_size(lm_tensor_dtype(w[i]->value));
        st = lm_tensor_copy_to(w[i]->value, p, b);
        p += b;
    }
    free(w);
    return st;
}

lm_status lm_weights_restore(lm_model *m, const void *buf, size_t bytes) {
    int nw = lm_model_weights(m, NULL, 0);
    lm_weight **w = malloc((size_t)(nw ? nw : 1) * sizeof *w);
    if (!w) return lm_fail(m->ctx, LM_ERR_OOM, "out of memory restoring the weights");
    lm_model_weights(m, w, nw);
    const char *p = buf;
    lm_status st = LM_OK;
    for (int i = 0; i < nw && !st; i++) {
        size_t b =
            (size_t)lm_tensor_numel(w[i]->value) * lm_dtype_size(lm_tensor_dtype(w[i]->value));
        if ((size_t)(p - (const char *)buf) + b > bytes) {
            st = lm_fail(m->ctx, LM_ERR_STATE, "the model's weights changed size since the copy");
            break;
        }
        st = lm_tensor_copy_from(w[i]->value, p, b);
        p += b;
    }
    free(w);
    return st;
}
