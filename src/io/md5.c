/* MD5 after RFC 1321: 64-byte blocks, four rounds of 16 steps each. */
#include "io/md5.h"
#include "core/core.h"
#include <errno.h>
#include <stdio.h>
#include <string.h>

/* Per-step left rotations and the sine-derived constants of RFC 1321. */
static const unsigned char R[64] = {7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22,
                                    5, 9,  14, 20, 5, 9,  14, 20, 5, 9,  14, 20, 5, 9,  14, 20,
                                    4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23,
                                    6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21};
static const uint32_t K[64] = {
    0xd76aa478, 0xe8c7b756, 0x242070db, 0xc1bdceee, 0xf57c0faf, 0x4787c62a, 0xa8304613, 0xfd469501,
    0x698098d8, 0x8b44f7af, 0xffff5bb1, 0x895cd7be, 0x6b901122, 0xfd987193, 0xa679438e, 0x49b40821,
    0xf61e2562, 0xc040b340, 0x265e5a51, 0xe9b6c7aa, 0xd62f105d, 0x02441453, 0xd8a1e681, 0xe7d3fbc8,
    0x21e1cde6, 0xc33707d6, 0xf4d50d87, 0x455a14ed, 0xa9e3e905, 0xfcefa3f8, 0x676f02d9, 0x8d2a4c8a,
    0xfffa3942, 0x8771f681, 0x6d9d6122, 0xfde5380c, 0xa4beea44, 0x4bdecfa9, 0xf6bb4b60, 0xbebfbc70,
    0x289b7ec6, 0xeaa127fa, 0xd4ef3085, 0x04881d05, 0xd9d4d039, 0xe6db99e5, 0x1fa27cf8, 0xc4ac5665,
    0xf4292244, 0x432aff97, 0xab9423a7, 0xfc93a039, 0x655b59c3, 0x8f0ccc92, 0xffeff47d, 0x85845dd1,
    0x6fa87e4f, 0xfe2ce6e0, 0xa3014314, 0x4e0811a1, 0xf7537e82, 0xbd3af235, 0x2ad7d2bb, 0xeb86d391};

static uint32_t rotl(uint32_t x, unsigned c) {
    return (x << c) | (x >> (32 - c));
}

static void block(uint32_t s[4], const unsigned char *p) {
    uint32_t w[16];
    for (int i = 0; i < 16; i++) /* little-endian words, whatever the host */
        w[i] = (uint32_t)p[4 * i] | (uint32_t)p[4 * i + 1] << 8 | (uint32_t)p[4 * i + 2] << 16 |
               (uint32_t)p[4 * i + 3] << 24;
    uint32_t a = s[0], b = s[1], c = s[2], d = s[3];
    for (int i = 0; i < 64; i++) {
        uint32_t f;
        int g;
        if (i < 16) {
            f = (b & c) | (~b & d);
            g = i;
        } else if (i < 32) {
            f = (d & b) | (~d & c);
            g = (5 * i + 1) & 15;
        } else if (i < 48) {
            f = b ^ c ^ d;
            g = (3 * i + 5) & 15;
        } else {
            f = c ^ (b | ~d);
            g = (7 * i) & 15;
        }
        uint32_t t = d;
        d = c;
        c = b;
        b = b + rotl(a + f + K[i] + w[g], R[i]);
        a = t;
    }
    s[0] += a;
    s[1] += b;
    s[2] += c;
    s[3] += d;
}

void lm_md5_init(lm_md5 *m) {
    m->s[0] = 0x67452301;
    m->s[1] = 0xefcdab89;
    m->s[2] = 0x98badcfe;
    m->s[3] = 0x10325476;
    m->len = 0;
}

void lm_md5_update(lm_md5 *m, const void *data, size_t n) {
    const unsigned char *p = data;
    size_t used = (size_t)(m->len & 63);
    m->len += n;
    if (used) {
        size_t take = 64 - used < n ? 64 - used : n;
        memcpy(m->buf + used, p, take);
        p += take;
        n -= take;
        if (used + take < 64) return;
        block(m->s, m->buf);
    }
    for (; n >= 64; p += 64, n -= 64) block(m->s, p);
    if (n) memcpy(m->buf, p, n);
}

void lm_md5_final_hex(lm_md5 *m, char hex[33]) {
    uint64_t bits = m->len * 8;
    unsigned char pad[72] = {0x80};
    size_t used = (size_t)(m->len & 63);
    size_t npad = used < 56 ? 56 - used : 120 - used;
    for (int i = 0; i < 8; i++) pad[npad + (size_t)i] = (unsigned char)(bits >> (8 * i));
    lm_md5_update(m, pad, npad + 8);
    static const char digits[] = "0123456789abcdef";
    for (int i = 0; i < 16; i++) {
        unsigned char byte = (unsigned char)(m->s[i / 4] >> (8 * (i % 4)));
        hex[2 * i] = digits[byte >> 4];
        hex[2 * i + 1] = digits[byte & 15];
    }
    hex[32] = 0;
}

lm_status lm_md5_file(lm_ctx *ctx, const char *path, char hex[33]) {
    errno = 0;
    FILE *f = fopen(path, "rb");
    if (!f)
        return lm_fail(ctx, LM_ERR_IO, "cannot open %s: %s", path,
                       errno ? strerror(errno) : "error");
    lm_md5 m;
    lm_md5_init(&m);
    unsigned char buf[1 << 16];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) lm_md5_update(&m, buf, n);
    int bad = ferror(f);
    fclose(f);
    if (bad) return lm_fail(ctx, LM_ERR_IO, "cannot read %s", path);
    lm_md5_final_hex(&m, hex);
    return LM_OK;
}
