#include "ops/op.h"

#define LM_OPDEF(ID, name) extern const lm_op_def lm_opdef_##name;
#include "ops/op_list.h"
#undef LM_OPDEF

static const lm_op_def *const registry[LM_OP_COUNT] = {
#define LM_OPDEF(ID, name) [LM_OP_##ID] = &lm_opdef_##name,
#include "ops/op_list.h"
#undef LM_OPDEF
};

const lm_op_def *lm_op_get(int op) {
    return op >= 0 && op < LM_OP_COUNT ? registry[op] : NULL;
}
