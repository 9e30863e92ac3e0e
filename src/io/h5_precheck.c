/* Global heap checks on an HDF5 image before libhdf5 1.10 reads it (see
 * h5_precheck.h). The layout is the HDF5 file format specification's,
 * "Global Heap"; the walk mirrors H5HG__cache_heap_deserialize. */
#include "io/h5_precheck.h"
#include <stdint.h>
#include <stdio.h>
#include <string.h>

static const unsigned char SIG[8] = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};

/* Little-endian unsigned integer of w bytes (w <= 8). */
static uint64_t le(const unsigned char *p, int w) {
    uint64_t v = 0;
    for (int i = w - 1; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

/* Sizes of offsets and lengths from the superblock at s; false when they
 * are not ones this check can read (HDF5 itself refuses other values, or
 * allows 16 and 32, which no tool writes). A superblock too short or of an
 * unknown version is left for HDF5 to refuse. */
static bool sizes(const unsigned char *p, size_t len, size_t s, int *lsize, bool *known) {
    *known = false;
    if (len - s < 16) return true;
    int v = p[s + 8], o, l;
    if (v <= 1) {
        o = p[s + 13];
        l = p[s + 14];
    } else if (v <= 3) {
        o = p[s + 9];
        l = p[s + 10];
    } else {
        return true;
    }
    if ((o != 2 && o != 4 && o != 8) || (l != 2 && l != 4 && l != 8)) return false;
    *lsize = l;
    *known = true;
    return true;
}

/* Walks the collection at g; false with the reason when libhdf5 would read
 * outside it or loop for ever. */
static bool collection_ok(const unsigned char *p, size_t len, size_t g, int L, char *why,
                          size_t n) {
    const size_t hdr = 8 + (size_t)L, ohdr = 8 + (size_t)L;
    if (len - g < hdr) {
        snprintf(why, n, "global heap collection at byte %zu is truncated", g);
        return false;
    }
    uint64_t size = le(p + g + 8, L);
    if (size < hdr || size > len - g) {
        snprintf(why, n,
                 "global heap collection at byte %zu declares %llu bytes (%zu left in the file)", g,
                 (unsigned long long)size, len - g);
        return false;
    }
    uint64_t q = hdr;
    while (q < size) {
        if (size - q < ohdr) break; /* a tail too small for an object header is free space */
        unsigned idx = (unsigned)le(p + g + q, 2);
        uint64_t osz = le(p + g + q + 8, L), need;
        if (idx > 0)
            need = osz > size ? UINT64_MAX : ohdr + ((osz + 7) & ~(uint64_t)7);
        else
            need = osz; /* the free-space object's size includes its header */
        if (need < ohdr || need > size - q) {
            snprintf(why, n,
                     "global heap collection at byte %zu: object %u of %llu bytes at offset %llu "
                     "does not fit its %llu-byte collection",
                     g, idx, (unsigned long long)osz, (unsigned long long)q,
                     (unsigned long long)size);
            return false;
        }
        q += need;
    }
    return true;
}

bool lm_h5_precheck(const unsigned char *p, size_t len, char *why, size_t n) {
    size_t s = 0;
    while (s + 8 <= len && memcmp(p + s, SIG, 8)) s = s ? 2 * s : 512;
    if (s + 8 > len) return true; /* no signature: HDF5 refuses it */
    int L = 8;
    bool known;
    if (!sizes(p, len, s, &L, &known)) {
        snprintf(why, n, "the superblock declares unsupported sizes of offsets or lengths");
        return false;
    }
    if (!known) return true;
    /* Every collection of version 1, wherever it lies: libhdf5 loads any
     * address a reference names, so all of them must be sound. */
    for (size_t g = s; g + 5 <= len;) {
        const unsigned char *hit = memchr(p + g, 'G', len - g - 4);
        if (!hit) break;
        g = (size_t)(hit - p);
        if (!memcmp(hit, "GCOL\1", 5) && !collection_ok(p, len, g, L, why, n)) return false;
        g++;
    }
    return true;
}
