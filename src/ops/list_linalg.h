/* Linear algebra (src/ops/linalg.c). */
LM_OPDEF(MATMUL, matmul)
LM_OPDEF(DENSE, dense)
LM_OPDEF(BIAS_ACT, bias_act)
LM_OPDEF(ACT_GRAD_Y, act_grad_y)
