/* Files and in-memory images of the Keras weights layout, atomic writes, and
 * lm_save_weights / lm_load_weights (Keras's Model.save_weights and
 * load_weights: .weights.h5, the weights of a .keras archive, legacy .h5). */
#include "io/keras_weights_impl.h"
#include "io/h5_precheck.h"
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zip.h>

static const unsigned char H5_SIG[8] = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};

/* Core-driver files need names; distinct ones keep HDF5 from taking two
 * images for the same open file. */
static void image_name(char *buf, size_t n) {
    static atomic_ulong counter;
    snprintf(buf, n, "lamina-image-%ld-%lu.h5", (long)getpid(),
             (unsigned long)atomic_fetch_add(&counter, 1));
}

static hid_t core_fapl(bool write) {
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    if (fapl < 0) return -1;
    /* Written in the 1.8 format: checksummed superblock and object headers.
     * Strong close: objects left open on an error path cannot keep the
     * image alive. */
    if (H5Pset_fapl_core(fapl, 1 << 16, 0) < 0 ||
        (write && H5Pset_libver_bounds(fapl, H5F_LIBVER_V18, H5F_LIBVER_V18) < 0) ||
        /* No aggregation blocks: a file without unused gaps. */
        (write &&
         (H5Pset_meta_block_size(fapl, 0) < 0 || H5Pset_small_data_block_size(fapl, 0) < 0)) ||
        H5Pset_fclose_degree(fapl, H5F_CLOSE_STRONG) < 0) {
        H5Pclose(fapl);
        return -1;
    }
    return fapl;
}

/* HDF5 1.10's H5Fget_file_image leaves a wrong checksum in a version 2
 * superblock, so the image is taken from the core driver when the file
 * closes (the superblock then final), through the file image callbacks. */
typedef struct captured {
    void *buf;
    size_t size; /* of the driver's buffer */
} captured;

static void *cap_malloc(size_t n, H5FD_file_image_op_t op, void *u) {
    captured *c = u;
    void *p = malloc(n ? n : 1);
    if (p && (op == H5FD_FILE_IMAGE_OP_FILE_OPEN || op == H5FD_FILE_IMAGE_OP_FILE_RESIZE))
        c->size = n;
    return p;
}

static void *cap_memcpy(void *d, const void *s, size_t n, H5FD_file_image_op_t op, void *u) {
    (void)op, (void)u;
    return memcpy(d, s, n);
}

static void *cap_realloc(void *p, size_t n, H5FD_file_image_op_t op, void *u) {
    captured *c = u;
    void *q = realloc(p, n ? n : 1);
    if (q && (op == H5FD_FILE_IMAGE_OP_FILE_OPEN || op == H5FD_FILE_IMAGE_OP_FILE_RESIZE))
        c->size = n;
    return q;
}

static herr_t cap_free(void *p, H5FD_file_image_op_t op, void *u) {
    captured *c = u;
    if (op == H5FD_FILE_IMAGE_OP_FILE_CLOSE && !c->buf)
        c->buf = p; /* the finished file: ours now */
    else
        free(p);
    return 0;
}

static void *cap_udata_copy(void *u) {
    return u;
}

static herr_t cap_udata_free(void *u) {
    (void)u;
    return 0;
}

/* The file's length from its version 2/3 superblock (end-of-file address,
 * 8-byte offsets, as written here), or 0. */
static size_t image_length(const unsigned char *p, size_t n) {
    if (n < 48 || memcmp(p, H5_SIG, 8) || (p[8] != 2 && p[8] != 3) || p[9] != 8) return 0;
    uint64_t base = 0, eof = 0;
    for (int i = 7; i >= 0; i--) base = base << 8 | p[12 + i], eof = eof << 8 | p[28 + i];
    return base == 0 && eof <= n ? (size_t)eof : 0;
}

static lm_status image_save(lm_model *m, const lm_h5_io_opts *o, void **data, size_t *len) {
    const char *who = o && o->who ? o->who : "save";
    *data = NULL;
    *len = 0;
    kw_quiet q;
    kw_quiet_begin(&q);
    char name[64], d[256];
    image_name(name, sizeof name);
    captured cap = {NULL, 0};
    H5FD_file_image_callbacks_t cb = {cap_malloc,     cap_memcpy,     cap_realloc, cap_free,
                                      cap_udata_copy, cap_udata_free, &cap};
    hid_t fapl = core_fapl(true);
    hid_t f = fapl < 0 || H5Pset_file_image_callbacks(fapl, &cb) < 0
                  ? -1
                  : H5Fcreate(name, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    lm_status st = LM_OK;
    if (f < 0) {
        st = lm_fail(m->ctx, LM_ERR_IO, "%s: cannot create an HDF5 image (%s)", who,
                     kw_h5_detail(d, sizeof d));
    } else {
        st = lm_h5_write_model_weights_ex(m, f, o);
        if (H5Fclose(f) < 0 && !st)
            st = lm_fail(m->ctx, LM_ERR_IO, "%s: cannot finish the HDF5 image of model %s (%s)",
                         who, m->name, kw_h5_detail(d, sizeof d));
    }
    if (fapl >= 0) H5Pclose(fapl);
    size_t n = cap.buf ? image_length(cap.buf, cap.size) : 0;
    if (!st && n == 0)
        st = lm_fail(m->ctx, LM_ERR_IO, "%s: the HDF5 library returned no image of model %s", who,
                     m->name);
    if (st) {
        free(cap.buf);
    } else {
        void *shrunk = realloc(cap.buf, n);
        *data = shrunk ? shrunk : cap.buf;
        *len = n;
    }
    kw_quiet_end(&q);
    return st;
}

lm_status lm_h5_model_weights_image(lm_model *m, bool with_optimizer, void **data, size_t *len) {
    if (!m || !data || !len) return LM_ERR_ARG;
    lm_h5_io_opts o = {.who = "save", .optimizer = with_optimizer, .epoch = -1};
    return image_save(m, &o, data, len);
}

/* HDF5 files start with the signature at 0, 512, 1024, 2048... (after a user block). */
static bool has_signature(const unsigned char *p, size_t len) {
    for (size_t off = 0; off + 8 <= len; off = off ? 2 * off : 512)
        if (!memcmp(p + off, H5_SIG, 8)) return true;
    return false;
}

hid_t kw_open_image(lm_ctx *ctx, const char *who, const char *src, const void *data, size_t len) {
    if (!data || len < 8 || !has_signature(data, len)) {
        lm_fail(ctx, LM_ERR_IO, "%s: %s is not an HDF5 file (%zu bytes, no HDF5 signature)", who,
                src, data ? len : 0);
        return -1;
    }
    char name[64], d[256];
    /* libhdf5 1.10 trusts the global heap (see h5_precheck.h). */
    if (!lm_h5_precheck(data, len, d, sizeof d)) {
        lm_fail(ctx, LM_ERR_FORMAT, "%s: %s is damaged: %s", who, src, d);
        return -1;
    }
    /* Nor does it check header sizes before allocating them (keras_weights_check.c). */
    if (!kw_image_ok(data, len)) {
        lm_fail(ctx, LM_ERR_IO,
                "%s: %s is corrupt, or uses HDF5 features Keras files never use, in its "
                "superblock or root group (%zu bytes)",
                who, src, len);
        return -1;
    }
    image_name(name, sizeof name);
    hid_t fapl = core_fapl(false), f = -1;
    /* The core driver copies the image: the caller keeps its buffer. */
    if (fapl < 0 || H5Pset_file_image(fapl, (void *)data, len) < 0 ||
        (f = H5Fopen(name, H5F_ACC_RDONLY, fapl)) < 0)
        lm_fail(ctx, LM_ERR_IO, "%s: %s is corrupt or not an HDF5 file (%s)", who, src,
                kw_h5_detail(d, sizeof d));
    if (fapl >= 0) H5Pclose(fapl);
    return f;
}

hid_t kw_open_file(lm_ctx *ctx, const char *who, const char *path) {
    void *data;
    size_t len;
    if (lm_read_file_all(ctx, who, path, SIZE_MAX / 2, &data, &len)) return -1;
    hid_t f = kw_open_image(ctx, who, path, data, len);
    free(data);
    return f;
}

lm_status lm_h5_load_model_weights_image_ex(lm_model *m, const void *data, size_t len,
                                            const lm_h5_io_opts *o) {
    if (!m) return LM_ERR_ARG;
    const char *who = o && o->who ? o->who : "load", *src = o && o->src ? o->src : "the image";
    kw_quiet q;
    kw_quiet_begin(&q);
    hid_t f = kw_open_image(m->ctx, who, src, data, len);
    lm_status st = LM_ERR_IO;
    if (f >= 0) {
        lm_h5_io_opts oo = o ? *o : (lm_h5_io_opts){0};
        oo.who = who;
        oo.src = src;
        st = lm_h5_read_model_weights_ex(m, f, &oo);
        H5Fclose(f);
    }
    kw_quiet_end(&q);
    return st;
}

lm_status lm_h5_load_model_weights_image(lm_model *m, const void *data, size_t len,
                                         bool with_optimizer) {
    lm_h5_io_opts o = {.who = "load", .src = "model.weights.h5", .optimizer = with_optimizer};
    return lm_h5_load_model_weights_image_ex(m, data, len, &o);
}

/* ---- whole files ---- */

static void dir_of(const char *path, char *dir, size_t n) {
    const char *slash = strrchr(path, '/');
    if (!slash)
        snprintf(dir, n, ".");
    else if (slash == path)
        snprintf(dir, n, "/");
    else
        snprintf(dir, n, "%.*s", (int)(slash - path), path);
}

lm_status lm_write_file_atomic(lm_ctx *ctx, const char *who, const char *path, const void *data,
                               size_t len) {
    if (!path || !*path) return lm_fail(ctx, LM_ERR_ARG, "%s: the file path is empty", who);
    size_t plen = strlen(path);
    char *tmp = malloc(plen + 16);
    if (!tmp) return lm_fail(ctx, LM_ERR_OOM, "%s: out of memory", who);
    snprintf(tmp, plen + 16, "%s.tmpXXXXXX", path);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        lm_status st = lm_fail(ctx, LM_ERR_IO, "%s: cannot create a temporary file next to %s: %s",
                               who, path, strerror(errno));
        free(tmp);
        return st;
    }
    /* mkstemp makes the file 0600; keep the mode a replaced file had. */
    struct stat old;
    mode_t mode = 0644;
    if (stat(path, &old) == 0)
        mode = old.st_mode & 07777;
    else {
        mode_t um = umask(0);
        umask(um);
        mode = 0666 & ~um;
    }
    (void)fchmod(fd, mode);
    const unsigned char *p = data;
    size_t left = len;
    int err = 0;
    while (left > 0) {
        ssize_t k = write(fd, p, left);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) {
            err = k < 0 ? errno : EIO;
            break;
        }
        p += k;
        left -= (size_t)k;
    }
    /* The data must be on disk before the rename makes it the file. */
    if (!err && fsync(fd)) err = errno;
    if (close(fd) && !err) err = errno;
    if (!err && rename(tmp, path)) err = errno;
    if (err) {
        unlink(tmp);
        free(tmp);
        return lm_fail(ctx, LM_ERR_IO, "%s: cannot write %s: %s", who, path, strerror(err));
    }
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
}

lm_status lm_read_file_all(lm_ctx *ctx, const char *who, const char *path, size_t max, void **data,
                           size_t *len) {
    *data = NULL;
    *len = 0;
    if (!path || !*path) return lm_fail(ctx, LM_ERR_ARG, "%s: the file path is empty", who);
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return lm_fail(ctx, LM_ERR_IO, "%s: cannot open %s: %s", who, path, strerror(errno));
    struct stat sb;
    lm_status st = LM_OK;
    unsigned char *buf = NULL;
    if (fstat(fd, &sb) || !S_ISREG(sb.st_mode)) {
        st = lm_fail(ctx, LM_ERR_IO, "%s: %s is not a regular file", who, path);
        goto done;
    }
    /* The size comes from the file system, never from the file's contents. */
    if ((uint64_t)sb.st_size > (uint64_t)max || (uint64_t)sb.st_size >= SIZE_MAX) {
        st = lm_fail(ctx, LM_ERR_IO, "%s: %s is too large (%lld bytes)", who, path,
                     (long long)sb.st_size);
        goto done;
    }
    size_t n = (size_t)sb.st_size, got = 0;
    if (!(buf = malloc(n ? n : 1))) {
        st = lm_fail(ctx, LM_ERR_OOM, "%s: cannot allocate %zu bytes to read %s", who, n, path);
        goto done;
    }
    while (got < n) {
        ssize_t k = read(fd, buf + got, n - got);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) {
            st = lm_fail(ctx, LM_ERR_IO, "%s: cannot read %s: %s", who, path,
                         k < 0 ? strerror(errno) : "unexpected end of file");
            goto done;
        }
        got += (size_t)k;
    }
    *data = buf;
    *len = n;
    buf = NULL;
done:
    free(buf);
    close(fd);
    return st;
}

lm_status lm_h5_save_weights_file(lm_model *m, const char *path, const lm_h5_io_opts *o) {
    if (!m) return LM_ERR_ARG;
    void *data;
    size_t len;
    lm_status st = image_save(m, o, &data, &len);
    if (st) return st;
    st = lm_write_file_atomic(m->ctx, o && o->who ? o->who : "save", path, data, len);
    free(data);
    return st;
}

lm_status lm_h5_load_weights_file(lm_model *m, const char *path, const lm_h5_io_opts *o) {
    if (!m) return LM_ERR_ARG;
    void *data;
    size_t len;
    lm_status st =
        lm_read_file_all(m->ctx, o && o->who ? o->who : "load", path, SIZE_MAX / 2, &data, &len);
    if (st) return st;
    lm_h5_io_opts oo = o ? *o : (lm_h5_io_opts){0};
    oo.src = path;
    st = lm_h5_load_model_weights_image_ex(m, data, len, &oo);
    free(data);
    return st;
}

/* ---- a .keras archive's model.weights.h5 ---- */

static lm_status zip_member(lm_ctx *ctx, const char *who, const char *path, const char *member,
                            void **data, size_t *len) {
    *data = NULL;
    *len = 0;
    int zerr = 0;
    zip_t *z = zip_open(path, ZIP_RDONLY, &zerr);
    if (!z) {
        zip_error_t e;
        zip_error_init_with_code(&e, zerr);
        lm_status st = lm_fail(ctx, LM_ERR_IO, "%s: cannot open %s as a .keras archive: %s", who,
                               path, zip_error_strerror(&e));
        zip_error_fini(&e);
        return st;
    }
    zip_stat_t sb;
    zip_stat_init(&sb);
    lm_status st = LM_OK;
    unsigned char *buf = NULL;
    zip_file_t *zf = NULL;
    if (zip_stat(z, member, 0, &sb) < 0 || !(sb.valid & ZIP_STAT_SIZE) ||
        !(sb.valid & ZIP_STAT_COMP_SIZE) || !(sb.valid & ZIP_STAT_INDEX)) {
        st = lm_fail(ctx, LM_ERR_IO, "%s: %s holds no %s", who, path, member);
        goto done;
    }
    /* Deflate expands at most 1032:1: a larger claimed size is a lie, and
     * nothing is allocated from it. */
    bool stored = (sb.valid & ZIP_STAT_COMP_METHOD) && sb.comp_method == ZIP_CM_STORE;
    if (sb.size >= SIZE_MAX / 2 || (stored && sb.size != sb.comp_size) ||
        (!stored && sb.size / 1032 > sb.comp_size + 1)) {
        st = lm_fail(ctx, LM_ERR_IO, "%s: %s is corrupt: %s claims %llu bytes from %llu", who, path,
                     member, (unsigned long long)sb.size, (unsigned long long)sb.comp_size);
        goto done;
    }
    size_t n = (size_t)sb.size, got = 0;
    if (!(buf = malloc(n ? n : 1))) {
        st = lm_fail(ctx, LM_ERR_OOM, "%s: cannot allocate %zu bytes for %s", who, n, member);
        goto done;
    }
    if (!(zf = zip_fopen_index(z, sb.index, 0))) {
        st = lm_fail(ctx, LM_ERR_IO, "%s: cannot read %s from %s: %s", who, member, path,
                     zip_strerror(z));
        goto done;
    }
    while (got < n) {
        zip_int64_t k = zip_fread(zf, buf + got, n - got);
        if (k <= 0) {
            st = lm_fail(ctx, LM_ERR_IO, "%s: %s is corrupt: cannot read %s (%s)", who, path,
                         member, k < 0 ? zip_file_strerror(zf) : "it ends early");
            goto done;
        }
        got += (size_t)k;
    }
    unsigned char extra;
    zip_int64_t k = zip_fread(zf, &extra, 1); /* also checks the CRC at the end */
    if (k != 0) {
        st = lm_fail(ctx, LM_ERR_IO, "%s: %s is corrupt: %s %s", who, path, member,
                     k < 0 ? zip_file_strerror(zf) : "is longer than its header says");
        goto done;
    }
    *data = buf;
    *len = n;
    buf = NULL;
done:
    if (zf) zip_fclose(zf);
    zip_discard(z);
    free(buf);
    return st;
}

/* ---- Model.save_weights / load_weights ---- */

static bool ends_with(const char *s, const char *suffix) {
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && !strcmp(s + a - b, suffix);
}

lm_status lm_save_weights(lm_model *m, const char *path) {
    if (!m) return LM_ERR_ARG;
    if (!path || !ends_with(path, ".weights.h5"))
        return lm_fail(m->ctx, LM_ERR_ARG,
                       "save_weights: the filename must end in `.weights.h5`. Received: "
                       "filepath=%s",
                       path ? path : "(null)");
    lm_h5_io_opts o = {.who = "save_weights", .src = path, .optimizer = true, .epoch = -1};
    return lm_h5_save_weights_file(m, path, &o);
}

lm_status lm_load_weights(lm_model *m, const char *path) {
    if (!m) return LM_ERR_ARG;
    if (!path || !*path) return lm_fail(m->ctx, LM_ERR_ARG, "load_weights: the file path is empty");
    lm_h5_io_opts o = {.who = "load_weights", .src = path, .optimizer = true};
    if (ends_with(path, ".weights.h5")) return lm_h5_load_weights_file(m, path, &o);
    if (ends_with(path, ".keras")) {
        void *data;
        size_t len;
        lm_status st = zip_member(m->ctx, "load_weights", path, "model.weights.h5", &data, &len);
        if (st) return st;
        char src[1024];
        snprintf(src, sizeof src, "%s (model.weights.h5)", path);
        o.src = src;
        st = lm_h5_load_model_weights_image_ex(m, data, len, &o);
        free(data);
        return st;
    }
    if (ends_with(path, ".h5") || ends_with(path, ".hdf5"))
        return lm_h5_legacy_load_weights(m, path);
    return lm_fail(m->ctx, LM_ERR_ARG,
                   "load_weights: File format not supported: filepath=%s. Keras 3 only supports V3 "
                   "`.keras` and `.weights.h5` files, or legacy V1/V2 `.h5` files.",
                   path);
}
