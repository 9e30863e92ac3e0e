/* Normalisation and dropout (src/ops/norm.c, src/ops/norm_grad.c, src/ops/dropout.c). */
LM_OPDEF(DROPOUT, dropout)
LM_OPDEF(DROPOUT_GRAD, dropout_grad)
LM_OPDEF(BATCH_NORM, batch_norm)
LM_OPDEF(BATCH_NORM_GRAD, batch_norm_grad)
LM_OPDEF(LAYER_NORM, layer_norm)
LM_OPDEF(LAYER_NORM_GRAD, layer_norm_grad)
LM_OPDEF(NORM_PARAM_GRAD, norm_param_grad)
LM_OPDEF(NORM_BETA_GRAD, norm_beta_grad)
