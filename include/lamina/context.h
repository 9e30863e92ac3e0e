/* The context owns what would otherwise be global: the thread count, the
 * random generator, the CPU features found and the last error message. */
#ifndef LAMINA_CONTEXT_H
#define LAMINA_CONTEXT_H

#include <stdbool.h>
#include <stdint.h>
#include "lamina/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct lm_ctx lm_ctx;

/* New context. Threads default to every online core, overridden by the
 * LAMINA_NUM_THREADS environment variable; the seed defaults to 0.
 * Returns NULL only when memory runs out. */
lm_ctx *lm_ctx_new(void);

/* Frees the context. Objects created from it must be freed first. NULL is a no-op. */
void lm_ctx_free(lm_ctx *ctx);

/* Sets the number of threads kernels may use (>= 1). */
lm_status lm_ctx_set_threads(lm_ctx *ctx, int n);

/* Number of threads kernels use. */
int lm_ctx_threads(const lm_ctx *ctx);

/* Re-seeds the context's random generator; the same seed gives the same numbers. */
lm_status lm_ctx_seed(lm_ctx *ctx, uint64_t seed);

/* Message of the last error recorded in this context ("" when none). */
const char *lm_ctx_error(const lm_ctx *ctx);

/* Clears the last error message. */
void lm_ctx_clear_error(lm_ctx *ctx);

/* Name of the SIMD kernel set picked for this CPU ("avx512", "avx2" or "generic"). */
const char *lm_ctx_isa(const lm_ctx *ctx);

/* Restricts the SIMD kernel set (for testing the portable paths): "avx512",
 * "avx2" or "generic". A set the CPU lacks is refused. */
lm_status lm_ctx_set_isa(lm_ctx *ctx, const char *isa);

/* Whether kernels treat denormal floats as zero (flush-to-zero and
 * denormals-are-zero, as TensorFlow does; default true). Subnormal inputs
 * otherwise slow SIMD arithmetic many times over. */
lm_status lm_ctx_set_flush_denormals(lm_ctx *ctx, bool on);

#ifdef __cplusplus
}
#endif
#endif
