/* Reading the Keras reference arrays of tests/data/keras/<family>/ and
 * comparing Lamina's outputs with them. */
#ifndef REFS_H
#define REFS_H

#include <lamina/lamina.h>
#include <lamina/npy.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

/* Directory of the committed reference arrays (set by ctest). */
static inline const char *ref_dir(void) {
    const char *d = getenv("LAMINA_TEST_DATA");
    return d && *d ? d : "tests/data";
}

/* Loads <LAMINA_TEST_DATA>/keras/<family>/<case>.<name>.npy; NULL (with a
 * message on stderr) if missing. */
static inline lm_tensor *ref_load(lm_ctx *ctx, const char *family, const char *cas,
                                  const char *name) {
    char path[1024];
    snprintf(path, sizeof path, "%s/keras/%s/%s.%s.npy", ref_dir(), family, cas, name);
    lm_tensor *t = lm_npy_load(ctx, path);
    if (!t) fprintf(stderr, "reference %s: %s\n", path, lm_ctx_error(ctx));
    return t;
}

/* Largest |a - b| / max(1, |b|) over all elements; INFINITY if shapes differ. */
static inline double ref_max_rel_err(const lm_tensor *a, const lm_tensor *b) {
    if (!a || !b || lm_tensor_numel(a) != lm_tensor_numel(b)) return INFINITY;
    lm_shape sa = lm_tensor_shape(a), sb = lm_tensor_shape(b);
    if (sa.ndim != sb.ndim) return INFINITY;
    for (int i = 0; i < sa.ndim; i++)
        if (sa.dims[i] != sb.dims[i]) return INFINITY;
    double worst = 0;
    for (int64_t i = 0; i < lm_tensor_numel(a); i++) {
        double x = lm_tensor_get(a, i), y = lm_tensor_get(b, i);
        double e = fabs(x - y) / (fabs(y) > 1 ? fabs(y) : 1);
        if (!(e <= worst)) worst = e; /* NaN counts as worst */
    }
    return worst;
}

#endif
