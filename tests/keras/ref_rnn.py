"""Keras references for the recurrent ops (tests/test_parity_rnn.c).

SimpleRNN / LSTM / GRU run as real Keras layers with weights set through
set_weights. Each case saves the inputs (x, kernel, recurrent, bias, h0, c0
where used), the layer's outputs (y, and h, c with return_state), random
upstream gradients (ry, rh, rc) and the JAX gradients of
sum(y * ry) + sum(h * rh) + sum(c * rc) through the layer's stateless_call
(dx, dkernel, drecurrent, dbias, dh0, dc0).

    KERAS_BACKEND=jax /opt/kvenv/bin/python tests/keras/ref_rnn.py
"""
import jax
import jax.numpy as jnp
import keras
import numpy as np

from refutil import rng, save, versions

F = "rnn"
LAYERS = {"simple": keras.layers.SimpleRNN, "lstm": keras.layers.LSTM, "gru": keras.layers.GRU}


def f32(a):
    return np.asarray(a, np.float32)


def case(name, seed, kind, n, t, f, units, use_bias=True, h0=False, c0=False, scale=0.5,
         **kw):
    r = rng(seed)
    layer = LAYERS[kind](units, use_bias=use_bias, return_state=True, **kw)
    x = f32(r.uniform(-1, 1, size=(n, t, f)))
    layer.build((n, t, f))
    weights = [f32(r.uniform(-scale, scale, size=v.shape)) for v in layer.trainable_variables]
    layer.set_weights(weights)
    states = []
    if h0:
        states.append(f32(r.uniform(-1, 1, size=(n, units))))
    if c0:
        states.append(f32(r.uniform(-1, 1, size=(n, units))))

    fixed = [v.value for v in layer.non_trainable_variables]  # the dropout seed

    def fn(x, weights, states):
        out = layer.stateless_call(weights, fixed, x, initial_state=states or None)[0]
        return out if isinstance(out, (list, tuple)) else [out]

    outs = [np.asarray(o) for o in layer(x, initial_state=states or None)]
    ys = fn(x, weights, states)
    for a, b in zip(outs, ys):
        assert np.allclose(a, np.asarray(b), atol=1e-6)
    rs = [f32(r.uniform(-1, 1, size=y.shape)) for y in ys]

    def loss(x, weights, states):
        return sum(jnp.sum(y * q) for y, q in zip(fn(x, weights, states), rs))

    dx, dw, ds = jax.grad(loss, argnums=(0, 1, 2))(x, weights, states)
    arrays = dict(x=x, kernel=weights[0], recurrent=weights[1], y=ys[0], h=ys[1], ry=rs[0],
                  rh=rs[1], dx=dx, dkernel=dw[0], drecurrent=dw[1])
    if use_bias:
        arrays.update(bias=weights[2], dbias=dw[2])
    if kind == "lstm":
        arrays.update(c=ys[2], rc=rs[2])
    for i, s in enumerate(states):
        nm = "h0" if i == 0 else "c0"
        arrays.update({nm: s, "d" + nm: ds[i]})
    save(F, name, **{k: np.asarray(v) for k, v in arrays.items()})


def main():
    print(versions())
    case("simple_seq", 1, "simple", 2, 4, 3, 5, return_sequences=True)
    case("simple_back_h0_relu", 2, "simple", 3, 5, 2, 4, use_bias=True, h0=True,
         go_backwards=True, activation="relu")
    case("simple_back_seq_nobias", 3, "simple", 2, 3, 4, 3, use_bias=False, go_backwards=True,
         return_sequences=True)
    case("lstm_seq", 4, "lstm", 2, 5, 3, 4, return_sequences=True)
    case("lstm_last_h0_c0", 5, "lstm", 3, 4, 2, 3, h0=True, c0=True)
    case("lstm_back_seq_states", 6, "lstm", 2, 4, 3, 3, h0=True, c0=True, go_backwards=True,
         return_sequences=True)
    case("lstm_hard_sigmoid_relu_nobias", 7, "lstm", 2, 4, 3, 4, use_bias=False,
         activation="relu", recurrent_activation="hard_sigmoid", return_sequences=True,
         scale=1.5)
    case("gru_seq", 8, "gru", 2, 5, 3, 4, return_sequences=True, h0=True)
    case("gru_last_back", 9, "gru", 3, 4, 2, 3, go_backwards=True)
    case("gru_before_seq", 10, "gru", 2, 4, 3, 4, reset_after=False, return_sequences=True,
         h0=True)
    case("gru_before_back_nobias", 11, "gru", 2, 3, 2, 3, reset_after=False, use_bias=False,
         go_backwards=True)
    case("gru_linear_hard_sigmoid", 12, "gru", 2, 4, 3, 3, activation="linear",
         recurrent_activation="hard_sigmoid", return_sequences=True, scale=1.5)
    # Wider layers: whole SIMD vectors plus a remainder in each row.
    case("lstm_wide", 13, "lstm", 4, 6, 3, 20, return_sequences=True, h0=True, c0=True)
    case("gru_wide", 14, "gru", 4, 6, 3, 20, return_sequences=True, h0=True)
    case("simple_wide", 15, "simple", 4, 6, 3, 20, return_sequences=True)


if __name__ == "__main__":
    main()
