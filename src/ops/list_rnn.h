/* Recurrent layers over a whole sequence (src/ops/rnn.c, src/ops/lstm.c,
 * src/ops/gru.c). The fused ops output a packed tensor (sequence and final
 * states) that rnn_sequence / rnn_state take apart; their backward helpers
 * return one packed gradient that rnn_param_grad (and rnn_input_grad, a view
 * of its first piece) take apart. */
LM_OPDEF(SIMPLE_RNN, simple_rnn)
LM_OPDEF(LSTM, lstm)
LM_OPDEF(GRU, gru)
LM_OPDEF(RNN_SEQUENCE, rnn_sequence)
LM_OPDEF(RNN_STATE, rnn_state)
LM_OPDEF(RNN_OUTPUT_GRAD, rnn_output_grad)
LM_OPDEF(SIMPLE_RNN_GRAD, simple_rnn_grad)
LM_OPDEF(LSTM_GRAD, lstm_grad)
LM_OPDEF(GRU_GRAD, gru_grad)
LM_OPDEF(RNN_PARAM_GRAD, rnn_param_grad)
LM_OPDEF(RNN_INPUT_GRAD, rnn_input_grad)
