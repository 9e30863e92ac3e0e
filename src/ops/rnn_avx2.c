/* The recurrent cells' row kernels (rnn_vmath.h) compiled for AVX2: the
 * activations are most of a small LSTM's time, and wider vectors cut it. */
#include "ops/rnn_impl.h"

#if defined(__AVX2__) && defined(__FMA__)
#include "ops/rnn_vmath.h"
const rnn_vec rnn_vec_avx2 = RNN_VEC_TABLE;
#else
const rnn_vec rnn_vec_avx2 = {0};
#endif
