"""Keras references for the recurrent layers SimpleRNN, LSTM, GRU and
Bidirectional (tests/test_parity_rnn_layers.c).

Inputs, initial states, weights and upstream gradients are not stored: both
sides draw them from the integer hash gen() of ref_layers.py. Per case one
file <case>.ref.npy holds, flattened and joined in this order:

  y...         every output of the call (the output, then the states with return_state)
  gx, gs...    the gradient of sum_k sum(y_k * R_k) for the input and each initial state
  gw...        ... for each weight (Keras order: forward layer, then backward layer)

The gradients are JAX vector-Jacobian products of layer.stateless_call. Array
k (the input, the initial states, the weights in get_weights order, then one
R per output) uses seed fnv1a(case) + 7919 * k; weights are scaled by 0.5.

stacked_lstm: the examples' model LSTM(50, return_sequences) -> LSTM(50) ->
Dense(1) on input (4, 10, 1), weights scaled by 0.125: predict, the loss of
one SGD step (lr 0.1, mse; targets from the hash) and predict after it.

    KERAS_BACKEND=jax /opt/kvenv/bin/python tests/keras/ref_rnn_layers.py
"""
import jax
import keras
import numpy as np

from ref_layers import fnv1a, gen
from refutil import save, versions

F = "rnn_layers"
L = keras.layers
N, T, FEAT = 2, 5, 3

# name: (layer factory, number of initial-state tensors)
CASES = {
    "simple": (lambda: L.SimpleRNN(4), 0),
    "simple_seq": (lambda: L.SimpleRNN(4, return_sequences=True), 0),
    "simple_back_seq": (lambda: L.SimpleRNN(3, go_backwards=True, return_sequences=True), 0),
    "simple_relu_state_h0": (lambda: L.SimpleRNN(4, activation="relu", return_state=True), 1),
    "simple_linear_nobias": (lambda: L.SimpleRNN(3, activation=None, use_bias=False,
                                                 return_sequences=True), 0),
    "lstm": (lambda: L.LSTM(4), 0),
    "lstm_seq_state": (lambda: L.LSTM(3, return_sequences=True, return_state=True), 0),
    "lstm_back": (lambda: L.LSTM(4, go_backwards=True), 0),
    "lstm_back_seq": (lambda: L.LSTM(3, go_backwards=True, return_sequences=True), 0),
    "lstm_init_state": (lambda: L.LSTM(3, return_state=True), 2),
    "lstm_acts": (lambda: L.LSTM(3, activation="relu", recurrent_activation="hard_sigmoid",
                                 return_sequences=True), 0),
    "lstm_nobias": (lambda: L.LSTM(3, use_bias=False), 0),
    "gru": (lambda: L.GRU(4), 0),
    "gru_seq": (lambda: L.GRU(3, return_sequences=True), 0),
    "gru_v1_seq": (lambda: L.GRU(3, reset_after=False, return_sequences=True), 0),
    "gru_v1_nobias": (lambda: L.GRU(3, reset_after=False, use_bias=False), 0),
    "gru_back_state_h0": (lambda: L.GRU(3, go_backwards=True, return_state=True), 1),
    "gru_acts": (lambda: L.GRU(3, activation="sigmoid", recurrent_activation="hard_sigmoid",
                               return_sequences=True), 0),
    "bi_lstm_concat": (lambda: L.Bidirectional(L.LSTM(3, return_sequences=True)), 0),
    "bi_lstm_ave": (lambda: L.Bidirectional(L.LSTM(3), merge_mode="ave"), 0),
    "bi_gru_sum": (lambda: L.Bidirectional(L.GRU(3, return_sequences=True), merge_mode="sum"), 0),
    "bi_simple_mul": (lambda: L.Bidirectional(L.SimpleRNN(3, return_sequences=True),
                                              merge_mode="mul"), 0),
    "bi_gru_v1_concat": (lambda: L.Bidirectional(L.GRU(2, reset_after=False)), 0),
    "bi_lstm_state": (lambda: L.Bidirectional(L.LSTM(3, return_sequences=True,
                                                     return_state=True)), 4),
    "bi_simple_state_ave": (lambda: L.Bidirectional(L.SimpleRNN(3, return_state=True),
                                                    merge_mode="ave"), 2),
}


def units_of(layer):
    inner = layer.forward_layer if isinstance(layer, L.Bidirectional) else layer
    return inner.cell.units


def layer_case(name, factory, n_states):
    seed = fnv1a(name)
    layer = factory()
    x = gen(seed, (N, T, FEAT))
    k = 1
    states = []
    for _ in range(n_states):
        states.append(gen(seed + 7919 * k, (N, units_of(layer))))
        k += 1
    layer.build((N, T, FEAT))
    values = []
    for w in layer.weights:
        values.append(gen(seed + 7919 * k, tuple(w.shape), 0.5))
        k += 1
    layer.set_weights(values)
    tv = [v.value for v in layer.trainable_variables]
    ntv = [v.value for v in layer.non_trainable_variables]

    def fn(x_, s_, tv_):
        out, _ = layer.stateless_call(tv_, ntv, x_, initial_state=list(s_) if s_ else None)
        return list(out) if isinstance(out, (list, tuple)) else [out]

    ys = fn(x, states, tv)
    # A layer called eagerly agrees with its stateless call.
    eager = layer(x, initial_state=states if states else None)
    eager = list(eager) if isinstance(eager, (list, tuple)) else [eager]
    for a, b in zip(eager, ys):
        assert np.allclose(np.asarray(a), np.asarray(b), atol=1e-6)
    rs = []
    for y in ys:
        rs.append(gen(seed + 7919 * k, tuple(y.shape)))
        k += 1

    def loss(x_, s_, tv_):
        return sum(jax.numpy.sum(y * r) for y, r in zip(fn(x_, s_, tv_), rs))

    gx, gs, gw = jax.grad(loss, argnums=(0, 1, 2))(x, states, tv)
    parts = [np.asarray(y) for y in ys] + [np.asarray(gx)] + [np.asarray(g) for g in gs]
    parts += [np.asarray(g) for g in gw]
    save(F, name, ref=np.concatenate([p.astype(np.float32).ravel() for p in parts]))


def stacked_lstm():
    name = "stacked_lstm"
    seed = fnv1a(name)
    model = keras.Sequential([
        keras.Input((10, 1)),
        L.LSTM(50, return_sequences=True),
        L.LSTM(50),
        L.Dense(1),
    ])
    x = gen(seed, (4, 10, 1))
    y = gen(seed + 7919, (4, 1))
    k = 2
    values = []
    for w in model.weights:
        values.append(gen(seed + 7919 * k, tuple(w.shape), 0.125))
        k += 1
    model.set_weights(values)
    before = model.predict(x, verbose=0)
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.1), loss="mse")
    step_loss = model.train_on_batch(x, y)
    after = model.predict(x, verbose=0)
    parts = [before, np.array([step_loss], np.float32), after]
    save(F, name, ref=np.concatenate([np.asarray(p, np.float32).ravel() for p in parts]))


def main():
    for name, spec in CASES.items():
        layer_case(name, *spec)
    stacked_lstm()
    print("wrote", len(CASES) + 1, "references;", versions())


if __name__ == "__main__":
    main()
