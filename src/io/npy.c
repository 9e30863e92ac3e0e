/* NumPy .npy reader and writer (format versions 1.0, 2.0 and 3.0).
 *
 * Everything in a file is untrusted: the header length is checked against the
 * file size and the data size against the bytes that follow before anything
 * sized by the header is allocated. */
#include "lamina/npy.h"
#include "core/core.h"
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
#error "npy.c copies little-endian file data as it is: a big-endian host needs byte swaps"
#endif

#define NPY_MAGIC     "\x93NUMPY"
#define NPY_MAGIC_LEN 6
/* Longest header accepted. Ours never exceed a few hundred bytes; the cap
 * stops a forged 4-byte length from costing a large allocation. */
#define NPY_MAX_HEADER ((size_t)1 << 20)
/* Conversions go through a stack buffer of this many bytes. */
#define NPY_CHUNK 8192

/* How file elements become tensor elements. */
typedef enum npy_conv { CONV_COPY, CONV_BOOL, CONV_I8, CONV_I16, CONV_U16, CONV_U32 } npy_conv;

typedef struct npy_kind {
    char code[3];  /* type letter and size, as in '<f4' */
    size_t size;   /* bytes per element in the file */
    lm_dtype dt;   /* dtype of the tensor returned */
    npy_conv conv; /* CONV_COPY: the bytes are the tensor's as they are */
} npy_kind;

static const npy_kind npy_kinds[] = {
    {"f4", 4, LM_F32, CONV_COPY}, {"f8", 8, LM_F64, CONV_COPY}, {"i4", 4, LM_I32, CONV_COPY},
    {"i8", 8, LM_I64, CONV_COPY}, {"u1", 1, LM_U8, CONV_COPY},  {"b1", 1, LM_U8, CONV_BOOL},
    {"i1", 1, LM_I32, CONV_I8},   {"i2", 2, LM_I32, CONV_I16},  {"u2", 2, LM_I32, CONV_U16},
    {"u4", 4, LM_I64, CONV_U32},
};

typedef struct npy_header {
    const npy_kind *kind;
    lm_shape shape;
    size_t numel;
    size_t nbytes; /* data bytes in the file */
} npy_header;

/* ---- header parsing ---- */

/* Validates the magic, version and header length from the first `avail`
 * bytes of a source of `total` bytes; sets *hoff and *hlen to where the dict text lies. */
static lm_status parse_prefix(lm_ctx *ctx, const char *what, const unsigned char *p, size_t avail,
                              uint64_t total, size_t *hoff, size_t *hlen) {
    if (avail < NPY_MAGIC_LEN || memcmp(p, NPY_MAGIC, NPY_MAGIC_LEN) != 0) {
        if (avail < NPY_MAGIC_LEN && memcmp(p, NPY_MAGIC, avail) == 0)
            return lm_fail(ctx, LM_ERR_FORMAT,
                           "npy: %s: truncated: %zu bytes, shorter than the magic", what, avail);
        return lm_fail(ctx, LM_ERR_FORMAT,
                       "npy: %s: bad magic (not a .npy file: it must start with \\x93NUMPY)", what);
    }
    if (avail < 8)
        return lm_fail(ctx, LM_ERR_FORMAT, "npy: %s: truncated header (no version bytes)", what);
    unsigned major = p[6], minor = p[7];
    if ((major != 1 && major != 2 && major != 3) || minor != 0)
        return lm_fail(ctx, LM_ERR_UNSUPPORTED,
                       "npy: %s: format version %u.%u is not supported (1.0, 2.0, 3.0 are)", what,
                       major, minor);
    size_t lenb = major == 1 ? 2 : 4;
    if (avail < 8 + lenb)
        return lm_fail(ctx, LM_ERR_FORMAT,
                       "npy: %s: truncated header (%zu of %zu header-length bytes)", what,
                       avail - 8, lenb);
    size_t len = (size_t)p[8] | (size_t)p[9] << 8;
    if (lenb == 4) len |= (size_t)p[10] << 16 | (size_t)p[11] << 24;
    *hoff = 8 + lenb;
    if ((uint64_t)len > total - *hoff)
        return lm_fail(ctx, LM_ERR_FORMAT,
                       "npy: %s: header length %zu runs past the end of the %llu-byte file", what,
                       len, (unsigned long long)total);
    if (len > NPY_MAX_HEADER)
        return lm_fail(ctx, LM_ERR_UNSUPPORTED,
                       "npy: %s: header of %zu bytes is longer than the %zu-byte limit", what, len,
                       NPY_MAX_HEADER);
    *hlen = len;
    return LM_OK;
}

/* A cursor over the header text, which is a Python dict literal. */
typedef struct lexer {
    const char *s, *p, *end;
    lm_ctx *ctx;
    const char *what;
} lexer;

/* Fails with the problem, where it was found and (a printable excerpt of) the header. */
LM_PRINTF(3, 4)
static lm_status lex_fail(lexer *lx, lm_status st, const char *fmt, ...) {
    char why[256], text[132];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    const char *end = lx->end; /* the padding shows nothing */
    while (end > lx->s && (end[-1] == ' ' || end[-1] == '\n')) end--;
    size_t n = 0;
    for (const char *q = lx->s; q < end && n < sizeof text - 4; q++)
        text[n++] = (*q >= 32 && *q < 127) ? *q : '?';
    if (n == sizeof text - 4 && end - lx->s > (ptrdiff_t)n) memcpy(text + n, "...", 3), n += 3;
    text[n] = 0;
    if (st != LM_ERR_FORMAT)
        return lm_fail(lx->ctx, st, "npy: %s: %s (header: \"%s\")", lx->what, why, text);
    return lm_fail(lx->ctx, st, "npy: %s: bad header: %s at offset %td (header: \"%s\")", lx->what,
                   why, lx->p - lx->s, text);
}

static void skip_ws(lexer *lx) {
    while (lx->p < lx->end && (*lx->p == ' ' || *lx->p == '\t' || *lx->p == '\n' || *lx->p == '\r'))
        lx->p++;
}

/* Skips white space, then consumes c if it comes next. */
static bool eat(lexer *lx, char c) {
    skip_ws(lx);
    if (lx->p < lx->end && *lx->p == c) {
        lx->p++;
        return true;
    }
    return false;
}

static bool peek(lexer *lx, char c) {
    skip_ws(lx);
    return lx->p < lx->end && *lx->p == c;
}

/* A quoted string without escapes: *str points into the header, *len its length. */
static lm_status lex_string(lexer *lx, const char **str, size_t *len) {
    skip_ws(lx);
    if (lx->p >= lx->end || (*lx->p != '\'' && *lx->p != '"'))
        return lex_fail(lx, LM_ERR_FORMAT, "expected a quoted string");
    char q = *lx->p++;
    const char *start = lx->p;
    while (lx->p < lx->end && *lx->p != q) {
        if (*lx->p == '\\') return lex_fail(lx, LM_ERR_FORMAT, "escape sequence in a string");
        lx->p++;
    }
    if (lx->p >= lx->end) return lex_fail(lx, LM_ERR_FORMAT, "unterminated string");
    *str = start;
    *len = (size_t)(lx->p - start);
    lx->p++;
    return LM_OK;
}

/* True or False. */
static lm_status lex_bool(lexer *lx, bool *v) {
    skip_ws(lx);
    size_t left = (size_t)(lx->end - lx->p);
    if (left >= 4 && !memcmp(lx->p, "True", 4))
        *v = true, lx->p += 4;
    else if (left >= 5 && !memcmp(lx->p, "False", 5))
        *v = false, lx->p += 5;
    else
        return lex_fail(lx, LM_ERR_FORMAT, "'fortran_order' must be True or False");
    if (lx->p < lx->end && (*lx->p == '_' || ((*lx->p | 0x20) >= 'a' && (*lx->p | 0x20) <= 'z')))
        return lex_fail(lx, LM_ERR_FORMAT, "'fortran_order' must be True or False");
    return LM_OK;
}

/* A tuple of non-negative integers, e.g. (), (3,), (2, 3). */
static lm_status lex_shape(lexer *lx, lm_shape *shape) {
    if (!eat(lx, '(')) return lex_fail(lx, LM_ERR_FORMAT, "'shape' must be a tuple");
    int n = 0;
    bool comma = false; /* a one-element tuple needs its trailing comma */
    while (!eat(lx, ')')) {
        if (n > 0 && !comma) return lex_fail(lx, LM_ERR_FORMAT, "expected ',' or ')' in 'shape'");
        skip_ws(lx);
        if (lx->p < lx->end && *lx->p == '-')
            return lex_fail(lx, LM_ERR_FORMAT, "negative dimension in 'shape'");
        if (lx->p >= lx->end || *lx->p < '0' || *lx->p > '9')
            return lex_fail(lx, LM_ERR_FORMAT, "expected a dimension in 'shape'");
        int64_t d = 0;
        while (lx->p < lx->end && *lx->p >= '0' && *lx->p <= '9') {
            int digit = *lx->p++ - '0';
            if (d > (INT64_MAX - digit) / 10)
                return lex_fail(lx, LM_ERR_FORMAT, "dimension too large in 'shape'");
            d = d * 10 + digit;
        }
        if (lx->p < lx->end && (*lx->p == 'L' || *lx->p == 'l')) lx->p++; /* Python 2 longs */
        if (n == LM_MAX_DIMS)
            return lex_fail(lx, LM_ERR_UNSUPPORTED, "more than %d dimensions in 'shape'",
                            LM_MAX_DIMS);
        shape->dims[n++] = d;
        comma = eat(lx, ',');
    }
    if (n == 1 && !comma)
        return lex_fail(lx, LM_ERR_FORMAT, "'shape' (n) is not a tuple: write (n,)");
    shape->ndim = n;
    return LM_OK;
}

/* Maps a descr string such as '<f4' to a kind, refusing what Lamina cannot hold. */
static lm_status lex_descr(lexer *lx, const char *d, size_t n, const npy_kind **kind) {
    char shown[40];
    snprintf(shown, sizeof shown, "'%.*s'%s", (int)(n < 32 ? n : 32), d, n > 32 ? "..." : "");
    char order = n ? d[0] : 0;
    if (order == '<' || order == '>' || order == '=' || order == '|')
        d++, n--;
    else
        order = 0;
    const npy_kind *k = NULL;
    for (size_t i = 0; i < sizeof npy_kinds / sizeof npy_kinds[0]; i++)
        if (n == 2 && !memcmp(d, npy_kinds[i].code, 2)) k = &npy_kinds[i];
    if (!k) {
        const char *why = "unsupported dtype";
        if (n && d[0] == 'O')
            why = "object arrays (pickled Python objects) are not supported";
        else if (n && d[0] == 'U')
            why = "unicode string arrays are not supported";
        else if (n && (d[0] == 'S' || d[0] == 'a'))
            why = "byte string arrays are not supported";
        else if (n && d[0] == 'V')
            why = "void/structured dtypes are not supported";
        else if (n && d[0] == 'c')
            why = "complex dtypes are not supported";
        return lex_fail(lx, LM_ERR_UNSUPPORTED, "%s: descr %s", why, shown);
    }
    /* The byte order matters only for multi-byte elements. */
    if (k->size > 1 && order == '>')
        return lex_fail(lx, LM_ERR_UNSUPPORTED, "big-endian data (descr %s) is not supported",
                        shown);
    if (k->size > 1 && order == '|')
        return lex_fail(lx, LM_ERR_FORMAT, "descr %s: '|' is for one-byte types", shown);
    *kind = k;
    return LM_OK;
}

/* Parses {'descr': ..., 'fortran_order': ..., 'shape': ...} (keys in any
 * order, optional trailing comma) followed by padding. */
static lm_status parse_dict(lm_ctx *ctx, const char *what, const char *text, size_t len,
                            npy_header *h) {
    lexer lx = {text, text, text + len, ctx, what};
    lm_status st;
    bool have_descr = false, have_order = false, have_shape = false, fortran = false;
    if (!eat(&lx, '{')) return lex_fail(&lx, LM_ERR_FORMAT, "expected '{'");
    while (!eat(&lx, '}')) {
        const char *key;
        size_t klen;
        if ((st = lex_string(&lx, &key, &klen)) != LM_OK) return st;
        if (!eat(&lx, ':')) return lex_fail(&lx, LM_ERR_FORMAT, "expected ':' after a key");
        bool *seen;
        if (klen == 5 && !memcmp(key, "descr", 5)) {
            seen = &have_descr;
            if (peek(&lx, '['))
                return lex_fail(&lx, LM_ERR_UNSUPPORTED, "structured dtypes are not supported");
            const char *d;
            size_t dlen;
            if ((st = lex_string(&lx, &d, &dlen)) != LM_OK) return st;
            if ((st = lex_descr(&lx, d, dlen, &h->kind)) != LM_OK) return st;
        } else if (klen == 13 && !memcmp(key, "fortran_order", 13)) {
            seen = &have_order;
            if ((st = lex_bool(&lx, &fortran)) != LM_OK) return st;
        } else if (klen == 5 && !memcmp(key, "shape", 5)) {
            seen = &have_shape;
            if ((st = lex_shape(&lx, &h->shape)) != LM_OK) return st;
        } else {
            return lex_fail(&lx, LM_ERR_FORMAT, "unexpected key '%.*s'",
                            (int)(klen < 40 ? klen : 40), key);
        }
        if (*seen) return lex_fail(&lx, LM_ERR_FORMAT, "duplicate key '%.*s'", (int)klen, key);
        *seen = true;
        if (!eat(&lx, ',') && !peek(&lx, '}'))
            return lex_fail(&lx, LM_ERR_FORMAT, "expected ',' or '}' after a value");
    }
    skip_ws(&lx); /* the padding: spaces and a final newline */
    if (lx.p != lx.end) return lex_fail(&lx, LM_ERR_FORMAT, "unexpected text after the dict");
    if (!have_descr || !have_order || !have_shape)
        return lex_fail(&lx, LM_ERR_FORMAT, "missing key '%s'",
                        !have_descr   ? "descr"
                        : !have_order ? "fortran_order"
                                      : "shape");
    if (fortran) {
        /* Column-major equals row-major when at most one dimension exceeds 1. */
        int big = 0;
        for (int i = 0; i < h->shape.ndim; i++) big += h->shape.dims[i] > 1;
        if (big > 1)
            return lex_fail(&lx, LM_ERR_UNSUPPORTED,
                            "Fortran-order (column-major) arrays are not supported");
    }
    return LM_OK;
}

/* Checks that the data after the header is exactly numel elements; `avail`
 * is how many bytes follow the header. */
static lm_status check_sizes(lm_ctx *ctx, const char *what, npy_header *h, uint64_t avail) {
    char sbuf[200];
    size_t numel = 1, out;
    bool bad = false;
    for (int i = 0; i < h->shape.ndim; i++)
        bad |= lm_mul_size(numel, (size_t)h->shape.dims[i], &numel) != 0;
    if (bad || numel > (size_t)INT64_MAX || lm_mul_size(numel, h->kind->size, &h->nbytes) ||
        lm_mul_size(numel, lm_dtype_size(h->kind->dt), &out) || out > (size_t)PTRDIFF_MAX)
        return lm_fail(ctx, LM_ERR_FORMAT, "npy: %s: shape %s is too large (size overflow)", what,
                       lm_shape_str(h->shape, sbuf, sizeof sbuf));
    h->numel = numel;
    if (avail != h->nbytes)
        return lm_fail(ctx, LM_ERR_FORMAT,
                       "npy: %s: %s: shape %s of %zu-byte elements needs %zu bytes of data but "
                       "%llu follow the header",
                       what, avail < h->nbytes ? "truncated data" : "trailing data after the array",
                       lm_shape_str(h->shape, sbuf, sizeof sbuf), h->kind->size, h->nbytes,
                       (unsigned long long)avail);
    return LM_OK;
}

/* Converts n file elements of kind k at src into dst (of dtype k->dt). */
static void convert(const npy_kind *k, const unsigned char *src, void *dst, size_t n) {
    if (n == 0) return;
    int32_t *d32 = dst;
    switch (k->conv) {
    case CONV_COPY:
        memcpy(dst, src, n * k->size);
        break;
    case CONV_BOOL: {
        uint8_t *d = dst;
        for (size_t i = 0; i < n; i++) d[i] = src[i] != 0;
        break;
    }
    case CONV_I8:
        for (size_t i = 0; i < n; i++) d32[i] = (int8_t)src[i];
        break;
    case CONV_I16:
        for (size_t i = 0; i < n; i++) {
            int16_t v;
            memcpy(&v, src + 2 * i, 2);
            d32[i] = v;
        }
        break;
    case CONV_U16:
        for (size_t i = 0; i < n; i++) {
            uint16_t v;
            memcpy(&v, src + 2 * i, 2);
            d32[i] = v;
        }
        break;
    case CONV_U32: {
        int64_t *d = dst;
        for (size_t i = 0; i < n; i++) {
            uint32_t v;
            memcpy(&v, src + 4 * i, 4);
            d[i] = v;
        }
        break;
    }
    }
}

/* ---- loading ---- */

static lm_status load_mem(lm_ctx *ctx, const unsigned char *p, size_t len, const char *what,
                          lm_tensor **out) {
    size_t hoff = 0, hlen = 0;
    npy_header h = {0};
    lm_status st = parse_prefix(ctx, what, p, len, len, &hoff, &hlen);
    if (st == LM_OK) st = parse_dict(ctx, what, (const char *)p + hoff, hlen, &h);
    if (st == LM_OK) st = check_sizes(ctx, what, &h, len - hoff - hlen);
    if (st != LM_OK) return st;
    lm_tensor *t = lm_tensor_new(ctx, h.kind->dt, h.shape);
    if (!t) return LM_ERR_OOM;
    convert(h.kind, p + hoff + hlen, lm_tensor_data(t), h.numel);
    *out = t;
    return LM_OK;
}

lm_tensor *lm_npy_load_mem(lm_ctx *ctx, const void *data, size_t len, const char *what) {
    if (!ctx) return NULL;
    if (!what) what = "<memory>";
    if (!data && len) {
        lm_fail(ctx, LM_ERR_ARG, "npy: %s: data is NULL", what);
        return NULL;
    }
    lm_tensor *t = NULL;
    load_mem(ctx, data ? data : "", len, what, &t);
    return t;
}

/* Reads exactly n bytes or fails naming what was being read. */
static lm_status read_exact(lm_ctx *ctx, FILE *f, const char *path, void *buf, size_t n,
                            const char *part) {
    size_t got = n ? fread(buf, 1, n, f) : 0;
    if (got == n) return LM_OK;
    if (ferror(f))
        return lm_fail(ctx, LM_ERR_IO, "npy: %s: read error in the %s: %s", path, part,
                       strerror(errno));
    return lm_fail(ctx, LM_ERR_FORMAT, "npy: %s: truncated %s (%zu of %zu bytes; file changed?)",
                   path, part, got, n);
}

static lm_status load_file(lm_ctx *ctx, FILE *f, const char *path, lm_tensor **out) {
    struct stat sb;
    if (fstat(fileno(f), &sb) != 0)
        return lm_fail(ctx, LM_ERR_IO, "npy: cannot stat %s: %s", path, strerror(errno));
    if (S_ISDIR(sb.st_mode)) return lm_fail(ctx, LM_ERR_IO, "npy: %s is a directory", path);
    /* The size is needed up front to bound every allocation. */
    if (!S_ISREG(sb.st_mode))
        return lm_fail(ctx, LM_ERR_UNSUPPORTED, "npy: %s is not a regular file", path);
    uint64_t total = (uint64_t)sb.st_size;

    unsigned char pre[12];
    size_t npre = total < sizeof pre ? (size_t)total : sizeof pre, hoff = 0, hlen = 0;
    lm_status st = read_exact(ctx, f, path, pre, npre, "header");
    if (st == LM_OK) st = parse_prefix(ctx, path, pre, npre, total, &hoff, &hlen);
    if (st != LM_OK) return st;
    char *text = malloc(hlen ? hlen : 1);
    if (!text) return lm_fail(ctx, LM_ERR_OOM, "npy: %s: out of memory for the header", path);
    npy_header h = {0};
    if (fseeko(f, (off_t)hoff, SEEK_SET) != 0)
        st = lm_fail(ctx, LM_ERR_IO, "npy: %s: seek failed: %s", path, strerror(errno));
    if (st == LM_OK) st = read_exact(ctx, f, path, text, hlen, "header");
    if (st == LM_OK) st = parse_dict(ctx, path, text, hlen, &h);
    free(text);
    if (st == LM_OK) st = check_sizes(ctx, path, &h, total - hoff - hlen);
    if (st != LM_OK) return st;

    lm_tensor *t = lm_tensor_new(ctx, h.kind->dt, h.shape);
    if (!t) return LM_ERR_OOM;
    unsigned char *dst = lm_tensor_data(t);
    size_t osize = lm_dtype_size(h.kind->dt);
    if (h.kind->conv == CONV_COPY) {
        st = read_exact(ctx, f, path, dst, h.nbytes, "data");
    } else {
        unsigned char chunk[NPY_CHUNK];
        size_t per = NPY_CHUNK / h.kind->size;
        for (size_t i = 0; i < h.numel && st == LM_OK; i += per) {
            size_t m = h.numel - i < per ? h.numel - i : per;
            st = read_exact(ctx, f, path, chunk, m * h.kind->size, "data");
            if (st == LM_OK) convert(h.kind, chunk, dst + i * osize, m);
        }
    }
    if (st == LM_OK && fgetc(f) != EOF)
        st = lm_fail(ctx, LM_ERR_FORMAT, "npy: %s: trailing data (the file grew while read)", path);
    if (st != LM_OK) {
        lm_tensor_free(t);
        return st;
    }
    *out = t;
    return LM_OK;
}

lm_tensor *lm_npy_load(lm_ctx *ctx, const char *path) {
    if (!ctx) return NULL;
    if (!path) {
        lm_fail(ctx, LM_ERR_ARG, "npy: path is NULL");
        return NULL;
    }
    errno = 0;
    FILE *f = fopen(path, "rb");
    if (!f) {
        lm_fail(ctx, LM_ERR_IO, "npy: cannot open %s: %s", path,
                errno ? strerror(errno) : "unknown error");
        return NULL;
    }
    lm_tensor *t = NULL;
    load_file(ctx, f, path, &t);
    fclose(f);
    return t;
}

/* ---- saving ---- */

/* Where encoded bytes go: a stream, or a buffer already sized to fit. */
typedef struct sink {
    FILE *f;
    unsigned char *mem;
    size_t pos;
} sink;

static bool sink_put(sink *s, const void *p, size_t n) {
    if (!n) return true;
    if (s->f) return fwrite(p, 1, n, s->f) == n;
    memcpy(s->mem + s->pos, p, n);
    s->pos += n;
    return true;
}

/* The .npy descr of a dtype. */
static const char *descr_of(lm_dtype dt) {
    switch (dt) {
    case LM_F32:
        return "<f4";
    case LM_F64:
        return "<f8";
    case LM_I32:
        return "<i4";
    case LM_I64:
        return "<i8";
    case LM_U8:
        return "|u1";
    default:
        return NULL;
    }
}

/* Writes the version 1.0 prefix and dict into buf, space-padded and ending in
 * '\n' so that the data starts at a multiple of 64 bytes, as numpy does.
 * Returns the length (buf holds at least 512 bytes). */
static size_t build_header(const lm_tensor *t, char *buf) {
    char dict[400];
    int n = snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': (",
                     descr_of(lm_tensor_dtype(t)));
    int nd = lm_tensor_ndim(t);
    for (int i = 0; i < nd; i++)
        n += snprintf(dict + n, sizeof dict - (size_t)n, "%s%lld", i ? ", " : "",
                      (long long)lm_tensor_dim(t, i));
    n += snprintf(dict + n, sizeof dict - (size_t)n, "%s), }", nd == 1 ? "," : "");
    size_t total = (10 + (size_t)n + 1 + 63) / 64 * 64, hlen = total - 10;
    memcpy(buf, NPY_MAGIC "\x01\x00", 8);
    buf[8] = (char)(hlen & 0xff);
    buf[9] = (char)(hlen >> 8);
    memcpy(buf + 10, dict, (size_t)n);
    memset(buf + 10 + n, ' ', total - 11 - (size_t)n);
    buf[total - 1] = '\n';
    return total;
}

/* Writes the elements of t in row-major order, whatever its strides. */
static bool put_data(sink *s, const lm_tensor *t) {
    size_t es = lm_dtype_size(lm_tensor_dtype(t));
    int64_t numel = lm_tensor_numel(t);
    if (numel == 0) return true;
    const unsigned char *base = lm_tensor_cdata(t);
    if (lm_tensor_is_contiguous(t)) return sink_put(s, base, (size_t)numel * es);
    int nd = lm_tensor_ndim(t);
    int64_t idx[LM_MAX_DIMS] = {0}, dim[LM_MAX_DIMS], str[LM_MAX_DIMS];
    for (int i = 0; i < nd; i++) dim[i] = lm_tensor_dim(t, i), str[i] = lm_tensor_stride(t, i);
    unsigned char chunk[NPY_CHUNK];
    size_t used = 0;
    int64_t off = 0; /* element offset of idx */
    for (int64_t k = 0; k < numel; k++) {
        memcpy(chunk + used, base + off * (int64_t)es, es);
        used += es;
        if (used + es > sizeof chunk) {
            if (!sink_put(s, chunk, used)) return false;
            used = 0;
        }
        for (int i = nd - 1; i >= 0; i--) {
            off += str[i];
            if (++idx[i] < dim[i]) break;
            off -= str[i] * dim[i];
            idx[i] = 0;
        }
    }
    return sink_put(s, chunk, used);
}

/* Checks t and gives its encoded size. */
static lm_status save_check(const lm_tensor *t, const char *dest, size_t *total) {
    if (!t) return LM_ERR_ARG;
    lm_ctx *ctx = lm_tensor_ctx(t);
    if (!dest) return lm_fail(ctx, LM_ERR_ARG, "npy: save: path is NULL");
    if (!descr_of(lm_tensor_dtype(t)))
        return lm_fail(ctx, LM_ERR_DTYPE, "npy: cannot save %s: dtype %d has no .npy form", dest,
                       (int)lm_tensor_dtype(t));
    char hdr[512];
    size_t n = build_header(t, hdr), data;
    if (lm_mul_size((size_t)lm_tensor_numel(t), lm_dtype_size(lm_tensor_dtype(t)), &data) ||
        data > SIZE_MAX - n)
        return lm_fail(ctx, LM_ERR_ARG, "npy: cannot save %s: tensor too large", dest);
    *total = n + data;
    return LM_OK;
}

lm_status lm_npy_save_mem(const lm_tensor *t, void **data, size_t *len) {
    if (data) *data = NULL;
    if (len) *len = 0;
    size_t total = 0;
    lm_status st = save_check(t, "<memory>", &total);
    if (st != LM_OK) return st;
    if (!data || !len)
        return lm_fail(lm_tensor_ctx(t), LM_ERR_ARG, "npy: save_mem: data and len must be set");
    sink s = {NULL, malloc(total), 0};
    if (!s.mem) return lm_fail(lm_tensor_ctx(t), LM_ERR_OOM, "npy: save_mem: out of memory");
    char hdr[512];
    size_t hn = build_header(t, hdr);
    sink_put(&s, hdr, hn);
    put_data(&s, t);
    *data = s.mem;
    *len = total;
    return LM_OK;
}

/* Mode for a new file: the target's if it exists, else 0666 less the umask
 * (read from /proc, because umask() cannot be read without changing it). */
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

/* Makes the rename durable; failure here loses nothing already written, so it is ignored. */
static void sync_dir(const char *path) {
    const char *slash = strrchr(path, '/');
    char *dir = slash ? strndup(path, slash == path ? 1 : (size_t)(slash - path)) : strdup(".");
    if (!dir) return;
    int fd = open(dir, O_RDONLY);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
    free(dir);
}

lm_status lm_npy_save(const lm_tensor *t, const char *path) {
    size_t total = 0;
    lm_status st = save_check(t, path, &total);
    if (st != LM_OK) return st;
    lm_ctx *ctx = lm_tensor_ctx(t);
    size_t plen = strlen(path);
    char *tmp = malloc(plen + sizeof ".tmpXXXXXX");
    if (!tmp) return lm_fail(ctx, LM_ERR_OOM, "npy: cannot save %s: out of memory", path);
    memcpy(tmp, path, plen);
    memcpy(tmp + plen, ".tmpXXXXXX", sizeof ".tmpXXXXXX");
    mode_t mode = new_file_mode(path);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        st = lm_fail(ctx, LM_ERR_IO, "npy: cannot save %s: cannot create a temporary file: %s",
                     path, strerror(errno));
        free(tmp);
        return st;
    }
    const char *step = "write";
    FILE *f = fdopen(fd, "wb");
    if (!f) {
        step = "fdopen";
        close(fd);
        goto fail;
    }
    char hdr[512];
    size_t hn = build_header(t, hdr);
    sink s = {f, NULL, 0};
    if (!sink_put(&s, hdr, hn) || !put_data(&s, t)) goto fail;
    if (fflush(f) != 0) goto fail;
    step = "fchmod";
    if (fchmod(fd, mode) != 0) goto fail;
    step = "fsync";
    if (fsync(fd) != 0) goto fail;
    step = "close";
    int rc = fclose(f);
    f = NULL;
    if (rc != 0) goto fail;
    step = "rename";
    if (rename(tmp, path) != 0) goto fail;
    free(tmp);
    sync_dir(path);
    return LM_OK;
fail:;
    int err = errno;
    if (f) fclose(f);
    unlink(tmp);
    free(tmp);
    return lm_fail(ctx, LM_ERR_IO, "npy: cannot save %s: %s failed: %s", path, step, strerror(err));
}
