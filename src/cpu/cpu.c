#include "cpu/cpu.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#include <stdint.h>

static uint64_t xgetbv0(void) {
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((uint64_t)hi << 32) | lo;
}

lm_isa lm_cpu_detect(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return LM_ISA_GENERIC;
    int osxsave = (c >> 27) & 1, fma = (c >> 12) & 1, avx = (c >> 28) & 1;
    if (!osxsave || !avx || !fma) return LM_ISA_GENERIC;
    uint64_t xcr0 = xgetbv0();
    /* The OS must save YMM (bits 1-2) and, for AVX-512, opmask and ZMM state (bits 5-7). */
    if ((xcr0 & 0x6) != 0x6) return LM_ISA_GENERIC;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return LM_ISA_GENERIC;
    int avx2 = (b >> 5) & 1;
    int avx512f = (b >> 16) & 1, avx512dq = (b >> 17) & 1, avx512bw = (b >> 30) & 1,
        avx512vl = (b >> 31) & 1;
    if (avx512f && avx512dq && avx512bw && avx512vl && (xcr0 & 0xe0) == 0xe0) return LM_ISA_AVX512;
    if (avx2) return LM_ISA_AVX2;
    return LM_ISA_GENERIC;
}
#else
lm_isa lm_cpu_detect(void) {
    return LM_ISA_GENERIC;
}
#endif

const char *lm_isa_name(lm_isa isa) {
    switch (isa) {
    case LM_ISA_AVX512:
        return "avx512";
    case LM_ISA_AVX2:
        return "avx2";
    default:
        return "generic";
    }
}
