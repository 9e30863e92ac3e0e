/* Every op, one family list each: LM_OPDEF(ID, name). A row named here must
 * be defined as `const lm_op_def lm_opdef_<name>` in its family's source, or
 * the library does not link. */
#include "ops/list_core.h"
#include "ops/list_elementwise.h"
#include "ops/list_reduce.h"
#include "ops/list_linalg.h"
#include "ops/list_shape.h"
#include "ops/list_conv.h"
#include "ops/list_norm.h"
#include "ops/list_rnn.h"
#include "ops/list_loss.h"
