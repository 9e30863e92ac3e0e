/* The optimizer update loops (rules_impl.h) compiled for AVX-512: the update
 * is a memory-bound stream, and wider vectors cut its instructions. */
#include "optim/rules.h"

#if defined(__AVX512F__) && defined(__AVX512VL__)
#include "optim/rules_impl.h"
const lm_rule_blocks lm_rule_blocks_avx512 = LM_RULE_BLOCKS_TABLE;
#else
const lm_rule_blocks lm_rule_blocks_avx512 = {0};
#endif
