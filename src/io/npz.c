/* NumPy .npz archives over libzip, each member decoded by the .npy reader.
 *
 * Everything in an archive is untrusted. Before reading a member its name,
 * method and sizes are checked against the archive itself: compressed sizes
 * must fit in the file (together, so members cannot share bytes), and the
 * declared size must be one that the compressed data can produce. Buffers
 * then grow with the bytes actually inflated, so a forged size costs nothing;
 * the data must end exactly at the declared size and pass its CRC. */
#include "lamina/npz.h"
#include "lamina/npy.h"
#include "core/core.h"
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zip.h>

/* Slack over the deflate ratio for tiny members (headers, empty blocks). */
#define INFLATE_SLACK 4096
/* First buffer for a member; it doubles up to the declared size. */
#define FIRST_CHUNK ((size_t)1 << 16)

struct lm_npz {
    lm_ctx *ctx;
    int n;
    char **names;
    lm_tensor **arrays;
};

void lm_npz_free(lm_npz *z) {
    if (!z) return;
    for (int i = 0; i < z->n; i++) {
        free(z->names[i]);
        lm_tensor_free(z->arrays[i]);
    }
    free(z->names);
    free(z->arrays);
    free(z);
}

int lm_npz_count(const lm_npz *z) {
    return z ? z->n : 0;
}

const char *lm_npz_name(const lm_npz *z, int i) {
    return z && i >= 0 && i < z->n ? z->names[i] : NULL;
}

lm_tensor *lm_npz_array(const lm_npz *z, int i) {
    return z && i >= 0 && i < z->n ? z->arrays[i] : NULL;
}

lm_tensor *lm_npz_get(const lm_npz *z, const char *name) {
    if (!z || !name) return NULL;
    for (int i = 0; i < z->n; i++)
        if (!strcmp(z->names[i], name)) return z->arrays[i];
    return NULL;
}

/* Checks an array name (the member name without ".npy"); writes why not into
 * why and returns false when it is refused. */
static bool name_ok(const char *s, size_t len, char *why, size_t why_len) {
    if (len == 0) return snprintf(why, why_len, "an empty array name"), false;
    if (len + 4 > LM_NPZ_MAX_NAME)
        return snprintf(why, why_len, "a name longer than %d bytes", LM_NPZ_MAX_NAME), false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '/' || c == '\\')
            return snprintf(why, why_len, "a path (nested members are not arrays)"), false;
        if (c < 32 || c == 127) return snprintf(why, why_len, "a control character"), false;
        if (c == '.' && i + 1 < len && s[i + 1] == '.')
            return snprintf(why, why_len, "\"..\""), false;
    }
    return true;
}

/* A printable copy of an untrusted member name for messages. */
static void printable(const char *s, char *out, size_t len) {
    size_t n = 0;
    for (; *s && n + 4 < len; s++) out[n++] = (*s >= 32 && *s < 127) ? *s : '?';
    if (*s) memcpy(out + n, "...", 3), n += 3;
    out[n] = 0;
}

/* The smallest archive: the end-of-central-directory record alone (what
 * numpy.savez writes for no arrays). libzip would open less as a new, empty
 * archive. */
#define EOCD_BYTES 22
static const unsigned char empty_zip[EOCD_BYTES] = {'P', 'K', 5, 6};

static lm_status zip_fail(lm_ctx *ctx, lm_status st, const char *what, zip_error_t *ze) {
    if (zip_error_code_zip(ze) == ZIP_ER_EXISTS)
        return lm_fail(ctx, st, "npz: %s: two members have the same name", what);
    return lm_fail(ctx, st, "npz: %s: not a readable zip archive: %s", what,
                   zip_error_strerror(ze));
}

static lm_status too_short(lm_ctx *ctx, const char *what, uint64_t len) {
    return lm_fail(ctx, LM_ERR_FORMAT,
                   "npz: %s: not a readable zip archive: %llu bytes, shorter than the %d-byte "
                   "end record",
                   what, (unsigned long long)len, EOCD_BYTES);
}

/* Reads member i (already checked) into a new buffer of exactly `size` bytes. */
static lm_status read_member(lm_ctx *ctx, zip_t *za, zip_uint64_t i, size_t size, const char *what,
                             const char *member, unsigned char **out) {
    *out = NULL;
    zip_file_t *zf = zip_fopen_index(za, i, 0);
    if (!zf)
        return lm_fail(ctx, LM_ERR_FORMAT, "npz: %s: member %s cannot be opened: %s", what, member,
                       zip_strerror(za));
    size_t cap = size < FIRST_CHUNK ? size : FIRST_CHUNK, len = 0;
    unsigned char *buf = malloc(cap ? cap : 1);
    lm_status st = LM_OK;
    if (!buf) {
        st = lm_fail(ctx, LM_ERR_OOM, "npz: %s: member %s: out of memory", what, member);
        goto done;
    }
    for (;;) {
        if (len == cap && cap < size) {
            size_t ncap = cap > size / 2 ? size : cap * 2;
            unsigned char *nb = realloc(buf, ncap);
            if (!nb) {
                st = lm_fail(ctx, LM_ERR_OOM, "npz: %s: member %s: out of memory", what, member);
                goto done;
            }
            buf = nb, cap = ncap;
        }
        unsigned char probe;
        /* Once full, one more byte must be the end (which also runs the CRC check). */
        zip_int64_t r = len < cap ? zip_fread(zf, buf + len, cap - len) : zip_fread(zf, &probe, 1);
        if (r < 0) {
            st = lm_fail(ctx, LM_ERR_FORMAT, "npz: %s: member %s is corrupt: %s", what, member,
                         zip_file_strerror(zf));
            goto done;
        }
        if (r == 0) break;
        if (len == cap) {
            st = lm_fail(ctx, LM_ERR_FORMAT,
                         "npz: %s: member %s holds more data than its declared %zu bytes", what,
                         member, size);
            goto done;
        }
        len += (size_t)r;
    }
    if (len != size)
        st = lm_fail(ctx, LM_ERR_FORMAT,
                     "npz: %s: member %s is truncated: %zu of its declared %zu bytes", what, member,
                     len, size);
done:
    zip_fclose(zf);
    if (st != LM_OK)
        free(buf);
    else
        *out = buf;
    return st;
}

/* Reads every member of an open archive of `total` bytes. */
static lm_npz *load_archive(lm_ctx *ctx, zip_t *za, uint64_t total, const char *what) {
    zip_int64_t count = zip_get_num_entries(za, 0);
    if (count < 0) {
        lm_fail(ctx, LM_ERR_FORMAT, "npz: %s: cannot count the members", what);
        return NULL;
    }
    if (count > LM_NPZ_MAX_MEMBERS) {
        lm_fail(ctx, LM_ERR_UNSUPPORTED, "npz: %s: %lld members, more than the %d allowed", what,
                (long long)count, LM_NPZ_MAX_MEMBERS);
        return NULL;
    }
    lm_npz *z = calloc(1, sizeof *z);
    if (z) {
        z->ctx = ctx;
        z->names = calloc((size_t)count + 1, sizeof *z->names);
        z->arrays = calloc((size_t)count + 1, sizeof *z->arrays);
    }
    if (!z || !z->names || !z->arrays) {
        lm_npz_free(z);
        lm_fail(ctx, LM_ERR_OOM, "npz: %s: out of memory", what);
        return NULL;
    }
    /* First pass: names, methods and sizes, before any data is touched. */
    uint64_t comp_total = 0;
    for (zip_int64_t i = 0; i < count; i++) {
        zip_stat_t sb;
        char shown[96], why[96];
        zip_stat_init(&sb);
        if (zip_stat_index(za, (zip_uint64_t)i, 0, &sb) != 0 || !(sb.valid & ZIP_STAT_NAME) ||
            !(sb.valid & ZIP_STAT_SIZE) || !(sb.valid & ZIP_STAT_COMP_SIZE)) {
            lm_fail(ctx, LM_ERR_FORMAT, "npz: %s: member %lld has no readable entry", what,
                    (long long)i);
            goto fail;
        }
        printable(sb.name, shown, sizeof shown);
        size_t nlen = strlen(sb.name);
        if (nlen < 4 || strcmp(sb.name + nlen - 4, ".npy") != 0) {
            lm_fail(ctx, LM_ERR_FORMAT, "npz: %s: member \"%s\" is not an .npy array", what, shown);
            goto fail;
        }
        if (!name_ok(sb.name, nlen - 4, why, sizeof why)) {
            lm_fail(ctx, LM_ERR_FORMAT, "npz: %s: member \"%s\" is refused: it has %s", what, shown,
                    why);
            goto fail;
        }
        for (zip_int64_t j = 0; j < i; j++)
            if (strlen(z->names[j]) == nlen - 4 && !memcmp(z->names[j], sb.name, nlen - 4)) {
                lm_fail(ctx, LM_ERR_FORMAT, "npz: %s: member \"%s\" appears twice", what, shown);
                goto fail;
            }
        if ((sb.valid & ZIP_STAT_ENCRYPTION_METHOD) && sb.encryption_method != ZIP_EM_NONE) {
            lm_fail(ctx, LM_ERR_UNSUPPORTED, "npz: %s: member \"%s\" is encrypted", what, shown);
            goto fail;
        }
        int method = sb.valid & ZIP_STAT_COMP_METHOD ? sb.comp_method : -1;
        if (method != ZIP_CM_STORE && method != ZIP_CM_DEFLATE) {
            lm_fail(ctx, LM_ERR_UNSUPPORTED,
                    "npz: %s: member \"%s\" uses compression method %d (stored and deflate are "
                    "supported)",
                    what, shown, method);
            goto fail;
        }
        comp_total += sb.comp_size;
        if (sb.comp_size > total || comp_total > total) {
            lm_fail(ctx, LM_ERR_FORMAT,
                    "npz: %s: member \"%s\" claims %llu compressed bytes; the %llu-byte archive "
                    "cannot hold them",
                    what, shown, (unsigned long long)sb.comp_size, (unsigned long long)total);
            goto fail;
        }
        uint64_t most = method == ZIP_CM_STORE
                            ? sb.comp_size
                            : sb.comp_size * LM_NPZ_MAX_INFLATION + INFLATE_SLACK;
        if (sb.size > most || sb.size > SIZE_MAX / 2) {
            lm_fail(ctx, LM_ERR_FORMAT,
                    "npz: %s: member \"%s\" declares %llu bytes, more than its %llu compressed "
                    "bytes can hold",
                    what, shown, (unsigned long long)sb.size, (unsigned long long)sb.comp_size);
            goto fail;
        }
        if (!(z->names[i] = strndup(sb.name, nlen - 4))) {
            lm_fail(ctx, LM_ERR_OOM, "npz: %s: out of memory", what);
            goto fail;
        }
        z->n = (int)i + 1;
    }
    /* Second pass: the data. */
    for (int i = 0; i < z->n; i++) {
        zip_stat_t sb;
        zip_stat_index(za, (zip_uint64_t)i, 0, &sb);
        char member[LM_NPZ_MAX_NAME + 8], src[LM_NPZ_MAX_NAME + 600];
        snprintf(member, sizeof member, "\"%s.npy\"", z->names[i]);
        unsigned char *buf;
        if (read_member(ctx, za, (zip_uint64_t)i, (size_t)sb.size, what, member, &buf) != LM_OK)
            goto fail;
        snprintf(src, sizeof src, "%s:%s.npy", what, z->names[i]);
        z->arrays[i] = lm_npy_load_mem(ctx, buf, (size_t)sb.size, src);
        free(buf);
        /* The .npy reader's message names the archive and the member already. */
        if (!z->arrays[i]) goto fail;
    }
    return z;
fail:
    lm_npz_free(z);
    return NULL;
}

lm_npz *lm_npz_load(lm_ctx *ctx, const char *path) {
    if (!path) {
        lm_fail(ctx, LM_ERR_ARG, "npz: load: path is NULL");
        return NULL;
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        lm_fail(ctx, LM_ERR_IO, "npz: cannot open %s: %s", path, strerror(errno));
        return NULL;
    }
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        lm_fail(ctx, LM_ERR_IO, "npz: %s: not a regular file", path);
        return NULL;
    }
    if (sb.st_size < EOCD_BYTES) {
        close(fd);
        too_short(ctx, path, (uint64_t)sb.st_size);
        return NULL;
    }
    int zerr = 0;
    zip_t *za = zip_fdopen(fd, ZIP_CHECKCONS, &zerr);
    if (!za) {
        close(fd); /* zip_fdopen keeps the descriptor only on success */
        zip_error_t ze;
        zip_error_init_with_code(&ze, zerr);
        zip_fail(ctx, LM_ERR_FORMAT, path, &ze);
        zip_error_fini(&ze);
        return NULL;
    }
    lm_npz *z = load_archive(ctx, za, (uint64_t)sb.st_size, path);
    zip_discard(za);
    return z;
}

lm_npz *lm_npz_load_mem(lm_ctx *ctx, const void *data, size_t len, const char *what) {
    if (!what) what = "<memory>";
    if (!data && len) {
        lm_fail(ctx, LM_ERR_ARG, "npz: %s: data is NULL", what);
        return NULL;
    }
    if (len < EOCD_BYTES) {
        too_short(ctx, what, len);
        return NULL;
    }
    zip_error_t ze;
    zip_error_init(&ze);
    zip_source_t *src = zip_source_buffer_create(data, len, 0, &ze);
    zip_t *za = src ? zip_open_from_source(src, ZIP_RDONLY | ZIP_CHECKCONS, &ze) : NULL;
    if (!za) {
        zip_source_free(src);
        zip_fail(ctx, LM_ERR_FORMAT, what, &ze);
        zip_error_fini(&ze);
        return NULL;
    }
    zip_error_fini(&ze);
    lm_npz *z = load_archive(ctx, za, len, what);
    zip_discard(za); /* frees src too */
    return z;
}

/* ---- writing ---- */

/* Builds the archive in memory with libzip, then hands back its bytes. */
lm_status lm_npz_save_mem(lm_ctx *ctx, int n, const char *const *names,
                          const lm_tensor *const *arrays, bool compress, void **data, size_t *len) {
    if (data) *data = NULL;
    if (len) *len = 0;
    if (!data || !len || n < 0 || (n > 0 && (!names || !arrays)))
        return lm_fail(ctx, LM_ERR_ARG, "npz: save: bad arguments (n %d, names, arrays, data)", n);
    if (n > LM_NPZ_MAX_MEMBERS)
        return lm_fail(ctx, LM_ERR_ARG, "npz: save: %d arrays, more than the %d allowed", n,
                       LM_NPZ_MAX_MEMBERS);
    for (int i = 0; i < n; i++) {
        char why[96];
        if (!names[i] || !arrays[i])
            return lm_fail(ctx, LM_ERR_ARG, "npz: save: array %d has no name or tensor", i);
        if (!name_ok(names[i], strlen(names[i]), why, sizeof why))
            return lm_fail(ctx, LM_ERR_ARG, "npz: save: array name \"%s\" is refused: it has %s",
                           names[i], why);
        for (int j = 0; j < i; j++)
            if (!strcmp(names[i], names[j]))
                return lm_fail(ctx, LM_ERR_ARG, "npz: save: array name \"%s\" appears twice",
                               names[i]);
    }
    if (n == 0) { /* libzip writes nothing at all for an empty archive */
        if (!(*data = malloc(EOCD_BYTES)))
            return lm_fail(ctx, LM_ERR_OOM, "npz: save: out of memory");
        memcpy(*data, empty_zip, EOCD_BYTES);
        *len = EOCD_BYTES;
        return LM_OK;
    }
    zip_error_t ze;
    zip_error_init(&ze);
    zip_source_t *buf = zip_source_buffer_create(NULL, 0, 0, &ze);
    zip_t *za = NULL;
    lm_status st = LM_OK;
    if (!buf) goto zfail;
    zip_source_keep(buf); /* it must outlive zip_close, which writes into it */
    if (!(za = zip_open_from_source(buf, ZIP_TRUNCATE, &ze))) goto zfail;
    /* A fixed time stamp (1980-01-01, the earliest zip can hold) keeps saves reproducible. */
    struct tm tm0 = {.tm_year = 80, .tm_mday = 1, .tm_isdst = -1};
    time_t t0 = mktime(&tm0);
    for (int i = 0; i < n; i++) {
        void *npy;
        size_t npy_len;
        if (lm_npy_save_mem(arrays[i], &npy, &npy_len) != LM_OK) {
            st = lm_fail(ctx, LM_ERR_ARG, "npz: save: array \"%s\": %s", names[i],
                         lm_ctx_error(lm_tensor_ctx(arrays[i])));
            goto done;
        }
        zip_source_t *ms = zip_source_buffer(za, npy, npy_len, 1);
        if (!ms) {
            free(npy);
            goto zfail_za;
        }
        char member[LM_NPZ_MAX_NAME + 8];
        snprintf(member, sizeof member, "%s.npy", names[i]);
        zip_int64_t idx = zip_file_add(za, member, ms, ZIP_FL_ENC_UTF_8);
        if (idx < 0) {
            zip_source_free(ms);
            goto zfail_za;
        }
        if (zip_set_file_compression(za, (zip_uint64_t)idx,
                                     compress ? ZIP_CM_DEFLATE : ZIP_CM_STORE, 0) != 0)
            goto zfail_za;
        if (t0 != (time_t)-1) zip_file_set_mtime(za, (zip_uint64_t)idx, t0, 0);
    }
    if (zip_close(za) != 0) goto zfail_za;
    za = NULL;
    zip_stat_t sb;
    if (zip_source_stat(buf, &sb) != 0 || !(sb.valid & ZIP_STAT_SIZE) ||
        zip_source_open(buf) != 0) {
        st = lm_fail(ctx, LM_ERR_IO, "npz: save: cannot read the archive back: %s",
                     zip_error_strerror(zip_source_error(buf)));
        goto done;
    }
    unsigned char *out = malloc(sb.size ? (size_t)sb.size : 1);
    if (!out) {
        zip_source_close(buf);
        st = lm_fail(ctx, LM_ERR_OOM, "npz: save: out of memory");
        goto done;
    }
    zip_int64_t got = zip_source_read(buf, out, sb.size);
    zip_source_close(buf);
    if (got < 0 || (zip_uint64_t)got != sb.size) {
        free(out);
        st = lm_fail(ctx, LM_ERR_IO, "npz: save: cannot read the archive back");
        goto done;
    }
    *data = out;
    *len = (size_t)sb.size;
    goto done;
zfail_za:
    st = lm_fail(ctx, LM_ERR_IO, "npz: save: zip: %s", zip_strerror(za));
    goto done;
zfail:
    st = lm_fail(ctx, LM_ERR_IO, "npz: save: zip: %s", zip_error_strerror(&ze));
done:
    if (za) zip_discard(za);
    zip_source_free(buf);
    zip_error_fini(&ze);
    return st;
}

/* Makes the rename durable; a failure here loses nothing already written. */
static void sync_dir(const char *path) {
    const char *slash = strrchr(path, '/');
    char *dir = slash ? strndup(path, slash == path ? 1 : (size_t)(slash - path)) : strdup(".");
    if (!dir) return;
    int fd = open(dir, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
    free(dir);
}

/* Mode for the new file: the existing target's, else 0666 less the umask
 * (read from /proc, since umask() cannot be read without changing it). */
static mode_t new_file_mode(const char *path) {
    struct stat sb;
    if (stat(path, &sb) == 0) return sb.st_mode & 07777;
    mode_t mask = 022;
    FILE *f = fopen("/proc/self/status", "r");
    if (f) {
        char line[128];
        unsigned m;
        while (fgets(line, sizeof line, f))
            if (sscanf(line, "Umask: %o", &m) == 1) mask = (mode_t)m;
        fclose(f);
    }
    return 0666 & ~mask;
}

lm_status lm_npz_save(lm_ctx *ctx, const char *path, int n, const char *const *names,
                      const lm_tensor *const *arrays, bool compress) {
    if (!path) return lm_fail(ctx, LM_ERR_ARG, "npz: save: path is NULL");
    void *data;
    size_t len;
    lm_status st = lm_npz_save_mem(ctx, n, names, arrays, compress, &data, &len);
    if (st != LM_OK) {
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", lm_ctx_error(ctx));
        return lm_fail(ctx, st, "npz: cannot save %s: %s", path,
                       strncmp(msg, "npz: save: ", 11) ? msg : msg + 11);
    }
    size_t plen = strlen(path);
    char *tmp = malloc(plen + sizeof ".tmpXXXXXX");
    if (!tmp) {
        free(data);
        return lm_fail(ctx, LM_ERR_OOM, "npz: cannot save %s: out of memory", path);
    }
    memcpy(tmp, path, plen);
    memcpy(tmp + plen, ".tmpXXXXXX", sizeof ".tmpXXXXXX");
    mode_t mode = new_file_mode(path);
    const char *step = "create a temporary file";
    int fd = mkstemp(tmp);
    if (fd < 0) {
        int err = errno;
        free(tmp);
        free(data);
        return lm_fail(ctx, LM_ERR_IO, "npz: cannot save %s: cannot %s: %s", path, step,
                       strerror(err));
    }
    step = "write";
    for (size_t off = 0; off < len;) {
        ssize_t w = write(fd, (const char *)data + off, len - off);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            if (w == 0) errno = EIO;
            goto fail;
        }
        off += (size_t)w;
    }
    step = "fchmod";
    if (fchmod(fd, mode) != 0) goto fail;
    step = "fsync";
    if (fsync(fd) != 0) goto fail;
    step = "close";
    int rc = close(fd);
    fd = -1;
    if (rc != 0) goto fail;
    step = "rename";
    if (rename(tmp, path) != 0) goto fail;
    free(tmp);
    free(data);
    sync_dir(path);
    return LM_OK;
fail:;
    int err = errno;
    if (fd >= 0) close(fd);
    unlink(tmp);
    free(tmp);
    free(data);
    return lm_fail(ctx, LM_ERR_IO, "npz: cannot save %s: %s failed: %s", path, step, strerror(err));
}
