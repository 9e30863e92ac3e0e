/* CPU feature detection. Kernels with SIMD twins pick one at run time. */
#ifndef LM_CPU_H
#define LM_CPU_H

typedef enum lm_isa { LM_ISA_GENERIC = 0, LM_ISA_AVX2 = 1, LM_ISA_AVX512 = 2 } lm_isa;

/* Best kernel set this CPU and OS support (checks CPUID and XGETBV). */
lm_isa lm_cpu_detect(void);
/* "generic", "avx2" or "avx512". */
const char *lm_isa_name(lm_isa isa);

#endif
