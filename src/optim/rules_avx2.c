/* The optimizer update loops (rules_impl.h) compiled for AVX2: the update
 * is a memory-bound stream, and wider vectors cut its instructions. */
#include "optim/rules.h"

#if defined(__AVX2__) && defined(__FMA__)
#include "optim/rules_impl.h"
const lm_rule_blocks lm_rule_blocks_avx2 = LM_RULE_BLOCKS_TABLE;
#else
const lm_rule_blocks lm_rule_blocks_avx2 = {0};
#endif
