/* Checks of an HDF5 image before the HDF5 library reads it. HDF5 1.10
 * allocates what a file's headers say (an object header chunk of 16 GB, a
 * local heap of any size) before finding that the file is shorter, and
 * trusts global heaps (where variable-length strings live): H5HG_read
 * indexes a collection's object table with whatever index a stored
 * reference gives and copies an object's stated size past the end of its
 * collection and past the string's stated length. So every object header is
 * checked before HDF5 loads it: its chunks, continuation blocks and the
 * local heaps it names must lie inside the image, and it may not use shared
 * messages or dense (fractal heap) storage, which Keras files never use.
 * And every reference of a variable-length string attribute must name an
 * object of a sound collection, of exactly the string's length, before
 * H5Aread follows it. The image is the core driver's own buffer. */
#include "io/keras_weights_impl.h"
#include <string.h>

#define UNDEF_ADDR UINT64_MAX

typedef struct h5img {
    const unsigned char *p;
    size_t len;
    uint64_t base; /* addresses count from here */
    size_t O, L;   /* sizes of offsets and lengths */
} h5img;

static uint64_t le(const unsigned char *p, size_t n) {
    uint64_t v = 0;
    for (size_t i = n; i-- > 0;) v = v << 8 | p[i];
    return v;
}

static bool undef(uint64_t a, size_t O) {
    return O == 8 ? a == UNDEF_ADDR : a == (uint64_t)UINT32_MAX;
}

/* Absolute offset of address a holding n bytes, or 0 when outside the image. */
static size_t at(const h5img *im, uint64_t a, uint64_t n) {
    if (a > im->len || im->base > im->len - a) return 0;
    uint64_t off = im->base + a;
    return off == 0 || n > im->len - off ? 0 : (size_t)off;
}

static const unsigned char SIG[8] = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};

/* The superblock's sizes; *sb its offset. */
static bool parse_super(const unsigned char *p, size_t len, h5img *im, size_t *sb) {
    memset(im, 0, sizeof *im);
    im->p = p;
    im->len = len;
    size_t s = 0;
    while (s + 8 <= len && memcmp(p + s, SIG, 8)) s = s ? 2 * s : 512;
    if (s + 48 > len) return false;
    const unsigned char *q = p + s;
    bool v2 = q[8] >= 2;
    if (q[8] > 3) return false;
    im->O = v2 ? q[9] : q[13];
    im->L = v2 ? q[10] : q[14];
    if ((im->O != 4 && im->O != 8) || (im->L != 2 && im->L != 4 && im->L != 8)) return false;
    im->base = le(q + (v2 ? 12 : q[8] == 1 ? 28 : 24), im->O);
    *sb = s;
    return im->base <= len;
}

/* ---- object headers ---- */

typedef struct chunks {
    int n, next;
    size_t off[64], len[64];
    bool v2[64];
} chunks;

static bool add_chunk(chunks *c, size_t off, size_t len, bool v2) {
    if (c->n == 64) return false;
    c->off[c->n] = off, c->len[c->n] = len, c->v2[c->n++] = v2;
    return true;
}

/* Calls fn on every message of the object header at address a; false when
 * the header or one of its chunks does not fit the image, or fn says so. */
typedef bool (*msg_fn)(const h5img *im, unsigned type, unsigned flags, const unsigned char *d,
                       size_t size, void *u);

static bool walk_header(const h5img *im, uint64_t a, msg_fn fn, void *u) {
    chunks c = {0};
    size_t o = at(im, a, 16);
    if (!o) return false;
    const unsigned char *h = im->p + o;
    bool track = false;
    if (!memcmp(h, "OHDR", 4)) {
        if (h[4] != 2) return false;
        size_t pos = 6 + (h[5] & 0x20 ? 16 : 0) + (h[5] & 0x10 ? 4 : 0),
               w = (size_t)1 << (h[5] & 3);
        if (!at(im, a, pos + w)) return false;
        track = h[5] & 0x04;
        uint64_t n = le(h + pos, w);
        if (n > im->len - (o + pos + w)) return false; /* chunk 0 and its checksum */
        add_chunk(&c, o + pos + w, (size_t)n, true);
    } else {
        if (h[0] != 1) return false;
        uint64_t n = le(h + 8, 4);
        if (n > im->len - (o + 16)) return false;
        add_chunk(&c, o + 16, (size_t)n, false);
    }
    for (; c.next < c.n; c.next++) {
        bool v2 = c.v2[c.next];
        const unsigned char *q = im->p + c.off[c.next], *end = q + c.len[c.next];
        size_t mh = v2 ? 4 + (track ? 2 : 0) : 8;
        while ((size_t)(end - q) >= mh) {
            unsigned type = v2 ? q[0] : (unsigned)le(q, 2);
            size_t size = v2 ? le(q + 1, 2) : le(q + 2, 2);
            unsigned flags = v2 ? q[3] : q[4];
            const unsigned char *d = q + mh;
            if (size > (size_t)(end - d)) return false;
            if (type == 0x10) { /* continuation: address and length of another chunk */
                if (size < im->O + im->L) return false;
                uint64_t cl = le(d + im->O, im->L);
                size_t co = at(im, le(d, im->O), cl > 8 ? cl : 8);
                if (!co) return false;
                bool ok = !memcmp(im->p + co, "OCHK", 4)
                              ? cl >= 8 && add_chunk(&c, co + 4, (size_t)cl - 8, true)
                              : add_chunk(&c, co, (size_t)cl, false);
                if (!ok) return false;
            }
            if (fn && !fn(im, type, flags, d, size, u)) return false;
            q = d + size;
        }
    }
    return true;
}

/* A fractal heap (dense links or attributes) whose blocks, which HDF5
 * allocates from these sizes, fit the image; no huge or filtered objects,
 * which Keras files never have. */
static bool fractal_heap_ok(const h5img *im, uint64_t a) {
    size_t O = im->O, L = im->L, tw = 14 + 10 * L + 2 * O;
    size_t o = at(im, a, tw + 6 + 2 * L + O);
    if (!o || memcmp(im->p + o, "FRHP", 4) || im->p[o + 4] != 0) return false;
    const unsigned char *h = im->p + o;
    uint64_t filters = le(h + 7, 2), n_huge = le(h + 14 + 7 * L + 2 * O, L);
    uint64_t start = le(h + tw + 2, L), max_direct = le(h + tw + 2 + L, L);
    unsigned max_bits = (unsigned)le(h + tw + 2 + 2 * L, 2);
    return filters == 0 && n_huge == 0 && start > 0 && start <= im->len && max_direct <= im->len &&
           max_bits <= 64;
}

/* A version 2 B-tree header whose nodes, allocated at its node size, fit. */
static bool btree2_ok(const h5img *im, uint64_t a) {
    if (undef(a, im->O)) return true;
    size_t o = at(im, a, 16);
    if (!o || memcmp(im->p + o, "BTHD", 4) || im->p[o + 4] != 0) return false;
    uint64_t node = le(im->p + o + 6, 4);
    return node > 0 && node <= im->len;
}

/* HDF5 1.10's message decoders read the fields a message announces without
 * comparing them with the message's size (an attribute name without its
 * terminating zero is read past the header, for one). Keras files use a few
 * message types of simple content: those are checked field by field, every
 * other type is refused. */

/* A datatype of the classes Keras files use: integer, float, string, and
 * variable-length strings or sequences of those. */
static bool dtype_ok(const unsigned char *d, size_t size, int depth) {
    if (size < 8 || depth > 1) return false;
    uint64_t n = le(d + 4, 4); /* the type's size, which HDF5 multiplies to allocate */
    switch (d[0] & 0x0F) {
    case 0: /* integer: bit offset, precision */
        return size >= 12 && n >= 1 && n <= 8;
    case 1: /* float: offsets, sizes, exponent bias */
        return size >= 20 && (n == 2 || n == 4 || n == 8);
    case 3: /* fixed-length string */
        return n >= 1 && n <= ((uint64_t)1 << 24);
    case 9: /* variable-length string of single bytes */
        return (d[1] & 0x0F) == 1 && dtype_ok(d + 8, size - 8, depth + 1) && le(d + 12, 4) == 1;
    default:
        return false;
    }
}

/* A dataspace: rank and dimensions (and maxima) inside the message. */
static bool dspace_ok(const h5img *im, const unsigned char *d, size_t size) {
    if (size < 4 || d[1] > 32) return false;
    size_t hdr = d[0] == 1 ? 8 : d[0] == 2 ? 4 : 0;
    if (!hdr) return false;
    size_t n = (size_t)d[1] * im->L * (d[2] & 0x01 ? 2 : 1);
    return hdr + n <= size;
}

/* An attribute: a zero-terminated name, a sound datatype and dataspace, all
 * inside the message. */
static bool attr_ok(const h5img *im, const unsigned char *d, size_t size) {
    if (size < 8 || d[0] < 1 || d[0] > 3) return false;
    size_t nsz = le(d + 2, 2), tsz = le(d + 4, 2), ssz = le(d + 6, 2);
    size_t hdr = d[0] == 3 ? 9 : 8;
    bool pad = d[0] == 1;
    size_t pn = pad ? (nsz + 7) / 8 * 8 : nsz, pt = pad ? (tsz + 7) / 8 * 8 : tsz;
    size_t ps = pad ? (ssz + 7) / 8 * 8 : ssz;
    if (nsz == 0 || hdr + pn + pt + ps > size || d[hdr + nsz - 1] != 0) return false;
    if (d[0] > 1 && (d[1] & 0x03)) return false; /* shared datatype or dataspace */
    return dtype_ok(d + hdr + pn, tsz, 0) && dspace_ok(im, d + hdr + pn + pt, ssz);
}

/* A link: its name and target inside the message; hard or soft. */
static bool link_ok(const h5img *im, const unsigned char *d, size_t size) {
    if (size < 2 || d[0] != 1) return false;
    unsigned f = d[1];
    size_t pos = 2, w = (size_t)1 << (f & 0x03);
    unsigned kind = 0;
    if (f & 0x08) kind = pos < size ? d[pos++] : 0xFF;
    if (f & 0x04) pos += 8;
    if (f & 0x10) pos++;
    if (pos + w > size || (kind != 0 && kind != 1)) return false;
    uint64_t nl = le(d + pos, w);
    pos += w;
    if (nl == 0 || nl > size - pos) return false;
    pos += (size_t)nl;
    if (kind == 0) return pos + im->O <= size;
    return pos + 2 <= size && le(d + pos, 2) <= size - pos - 2;
}

/* The data layout: where the values are, inside the message or the image. */
static bool layout_ok(const h5img *im, const unsigned char *d, size_t size) {
    if (size < 2 || d[0] != 3) return d[0] >= 1 && d[0] <= 2 && size >= 8; /* old: fixed part */
    switch (d[1]) {
    case 0: /* compact: size, then the data */
        return size >= 4 && le(d + 2, 2) <= size - 4;
    case 1: /* contiguous: address, size */
        return size >= 2 + im->O + im->L;
    case 2: /* chunked: rank, B-tree address, chunk dimensions */
        return size >= 3 + im->O && d[2] >= 1 && d[2] <= 33 && 3 + im->O + 4 * (size_t)d[2] <= size;
    default:
        return false;
    }
}

/* What HDF5 would load for a message before its own checks. */
static bool msg_sound(const h5img *im, unsigned type, unsigned flags, const unsigned char *d,
                      size_t size, void *u) {
    (void)u;
    if (flags & 0x02) return false; /* shared: stored in a heap elsewhere */
    switch (type) {
    case 0x00: /* padding */
    case 0x10: /* continuation, checked by walk_header */
        return true;
    case 0x01:
        return dspace_ok(im, d, size);
    case 0x03:
        return dtype_ok(d, size, 0);
    case 0x04: /* old fill value: size, value */
        return size >= 4 && le(d, 4) <= size - 4;
    case 0x05: /* fill value */
        if (size < 2 || d[0] < 1 || d[0] > 3) return false;
        if (d[0] == 3) return !(d[1] & 0x20) || (size >= 6 && le(d + 2, 4) <= size - 6);
        return size < 4 || !d[3] || (size >= 8 && le(d + 4, 4) <= size - 8);
    case 0x06:
        return link_ok(im, d, size);
    case 0x08:
        return layout_ok(im, d, size);
    case 0x0A: /* group info */
        return size >= 2 && (size_t)(2 + (d[1] & 0x01 ? 4 : 0) + (d[1] & 0x02 ? 4 : 0)) <= size;
    case 0x0C:
        return attr_ok(im, d, size);
    case 0x0E: /* old modification time: 14 digits */
        return size >= 14;
    case 0x12: /* modification time */
    case 0x16: /* reference count */
        return size >= 8 || (size >= 5 && type == 0x16);
    case 0x13: /* B-tree 'K' values (superblock extension) */
        return size >= 7;
    case 0x11: { /* symbol table: B-tree and local heap */
        if (size < 2 * im->O) return false;
        size_t h = at(im, le(d + im->O, im->O), 8 + 2 * im->L + im->O);
        if (!h || memcmp(im->p + h, "HEAP", 4)) return false;
        uint64_t n = le(im->p + h + 8, im->L);
        return at(im, le(im->p + h + 8 + 2 * im->L, im->O), n) != 0;
    }
    case 0x02:
    case 0x15: { /* link / attribute info: dense storage */
        if (size < 2) return false;
        /* After version and flags, an optional maximum creation index, then
         * the fractal heap, the name index and an optional order index. */
        size_t pos = 2 + (d[1] & 0x01 ? (type == 0x02 ? 8 : 2) : 0);
        size_t nb = d[1] & 0x02 ? 2 : 1;
        if (pos + (1 + nb) * im->O > size) return false;
        uint64_t heap = le(d + pos, im->O);
        if (undef(heap, im->O)) return true; /* compact: in this header */
        if (!fractal_heap_ok(im, heap)) return false;
        for (size_t k = 0; k < nb; k++)
            if (!btree2_ok(im, le(d + pos + (1 + k) * im->O, im->O))) return false;
        return true;
    }
    default: /* external files, filters, comments, shared tables...: not in Keras files */
        return false;
    }
}

static bool header_ok(const h5img *im, uint64_t a) {
    return walk_header(im, a, msg_sound, NULL);
}

bool kw_image_ok(const void *data, size_t len) {
    h5img im;
    size_t sb;
    if (!parse_super(data, len, &im, &sb)) return false;
    const unsigned char *q = im.p + sb;
    if (q[8] >= 2) { /* extension, root */
        size_t need = 12 + 4 * im.O + 4;
        if (sb + need > len) return false;
        uint64_t ext = le(q + 12 + im.O, im.O), root = le(q + 12 + 3 * im.O, im.O);
        return (undef(ext, im.O) || header_ok(&im, ext)) && header_ok(&im, root);
    }
    /* Version 0/1: base, free space, end of file, driver info, then the root
     * group's symbol table entry (link name offset, object header address). */
    size_t e = 24 + 4 * im.O + (q[8] == 1 ? 4 : 0);
    if (sb + e + 2 * im.O > len) return false;
    return header_ok(&im, le(q + e + im.O, im.O));
}

/* The image HDF5 reads for obj (core driver files only). */
static bool image_of(hid_t obj, h5img *im) {
    hid_t f = H5Iget_file_id(obj), fapl = f < 0 ? -1 : H5Fget_access_plist(f);
    void *handle = NULL;
    hsize_t size = 0;
    bool ok = fapl >= 0 && H5Pget_driver(fapl) == H5FD_CORE &&
              H5Fget_vfd_handle(f, fapl, &handle) >= 0 && handle && H5Fget_filesize(f, &size) >= 0;
    if (fapl >= 0) H5Pclose(fapl);
    if (f >= 0) H5Fclose(f);
    /* The core driver hands out the address of its buffer pointer. */
    size_t sb;
    return ok && *(unsigned char **)handle &&
           parse_super(*(unsigned char **)handle, (size_t)size, im, &sb);
}

bool kw_link_target_ok(hid_t loc, uint64_t addr) {
    h5img im;
    return image_of(loc, &im) && header_ok(&im, addr);
}

/* ---- variable-length strings ---- */

typedef struct attr_find {
    const char *name;
    size_t namelen;
    const unsigned char *data;
    size_t n;
} attr_find;

static bool find_attr_msg(const h5img *im, unsigned type, unsigned flags, const unsigned char *d,
                          size_t size, void *u) {
    (void)im, (void)flags;
    attr_find *f = u;
    if (type != 0x0C || size < 8 || f->data) return true;
    unsigned ver = d[0];
    size_t nsz = le(d + 2, 2), tsz = le(d + 4, 2), ssz = le(d + 6, 2);
    size_t hdr = ver == 3 ? 9 : 8;
    bool pad = ver == 1;
    size_t pn = pad ? (nsz + 7) / 8 * 8 : nsz, pt = pad ? (tsz + 7) / 8 * 8 : tsz,
           ps = pad ? (ssz + 7) / 8 * 8 : ssz;
    if (ver >= 1 && ver <= 3 && !(ver > 1 && (d[1] & 0x03)) && nsz == f->namelen + 1 &&
        hdr + pn + pt + ps <= size && !memcmp(d + hdr, f->name, f->namelen)) {
        f->data = d + hdr + pn + pt + ps;
        f->n = size - (hdr + pn + pt + ps);
    }
    return true;
}

/* Does the collection at address a, walked as HDF5 walks it, hold object
 * idx of exactly size bytes? */
static bool heap_object_ok(const h5img *im, uint64_t a, uint64_t idx, uint64_t size) {
    size_t hdr = 8 + im->L, objhdr = 8 + im->L, o = at(im, a, hdr);
    if (!o || memcmp(im->p + o, "GCOL", 4) || im->p[o + 4] != 1) return false;
    uint64_t total = le(im->p + o + 8, im->L);
    if (total < hdr || total > im->len - o) return false;
    const unsigned char *q = im->p + o + hdr, *end = im->p + o + total;
    bool found = false;
    while (q < end && (size_t)(end - q) >= objhdr) {
        unsigned i = (unsigned)le(q, 2);
        uint64_t osz = le(q + 8, im->L);
        uint64_t need = i ? objhdr + (osz + 7) / 8 * 8 : osz;
        if (osz > total || need == 0 || need > (uint64_t)(end - q)) return false;
        if (i && i == idx) found = osz == size;
        q += need;
    }
    return found;
}

bool kw_vlen_refs_ok(hid_t obj, const char *name, int64_t np) {
    h5img im;
#if H5_VERSION_GE(1, 12, 0)
    H5O_info1_t oi;
#else
    H5O_info_t oi;
#endif
    if (!image_of(obj, &im) || H5Oget_info2(obj, &oi, H5O_INFO_BASIC) < 0) return false;
    attr_find f = {name, strlen(name), NULL, 0};
    if (!walk_header(&im, (uint64_t)oi.addr, find_attr_msg, &f) || !f.data) return false;
    size_t ref = 4 + im.O + 4;
    if (np < 0 || (uint64_t)np > f.n / ref) return false;
    const unsigned char *d = f.data;
    for (int64_t i = 0; i < np; i++, d += ref) {
        uint64_t len = le(d, 4), addr = le(d + 4, im.O), idx = le(d + 4 + im.O, 4);
        if (len && !heap_object_ok(&im, addr, idx, len)) return false;
    }
    return true;
}
