/* Sources and plumbing (src/ops/core_ops.c). */
LM_OPDEF(PLACEHOLDER, placeholder)
LM_OPDEF(VARIABLE, variable)
LM_OPDEF(CONSTANT, constant)
LM_OPDEF(CAST, cast)
LM_OPDEF(FILL_LIKE, fill_like)
LM_OPDEF(SUM_TO_LIKE, sum_to_like)
LM_OPDEF(RESHAPE, reshape)
