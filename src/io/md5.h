/* MD5 (RFC 1321), used only to check downloaded files against published
 * checksums, never for security. */
#ifndef LM_MD5_H
#define LM_MD5_H

#include <stddef.h>
#include <stdint.h>
#include "lamina/context.h"
#include "lamina/status.h"

typedef struct lm_md5 {
    uint32_t s[4];
    uint64_t len; /* bytes hashed so far */
    unsigned char buf[64];
} lm_md5;

void lm_md5_init(lm_md5 *m);
void lm_md5_update(lm_md5 *m, const void *data, size_t n);
/* Finishes the hash and writes it as 32 lowercase hex digits and a NUL. */
void lm_md5_final_hex(lm_md5 *m, char hex[33]);
/* MD5 of a whole file as hex; LM_ERR_IO with a message when it cannot be read. */
lm_status lm_md5_file(lm_ctx *ctx, const char *path, char hex[33]);

#endif
