/* The elementwise loops of elementwise_kern.h built with AVX2 and FMA. */
#if defined(__AVX2__) && defined(__FMA__)
#define EK_TABLE lm_elem_kernels_avx2
#include "ops/elementwise_kern.h"
#else
#include "ops/elementwise.h"
const lm_elem_kernels lm_elem_kernels_avx2 = {0};
#endif
