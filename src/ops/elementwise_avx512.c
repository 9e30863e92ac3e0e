/* The elementwise loops of elementwise_kern.h built with AVX-512. */
#if defined(__AVX512F__) && defined(__AVX512VL__) && defined(__FMA__)
#define EK_TABLE lm_elem_kernels_avx512
#include "ops/elementwise_kern.h"
#else
#include "ops/elementwise.h"
const lm_elem_kernels lm_elem_kernels_avx512 = {0};
#endif
