"""Keras models covering every layer Lamina reads from Keras files, in
Sequential and functional form, shared by tests/keras/ref_files.py (the
committed reference files) and tests/keras/interop_files.py (the live
interop test). Each builder returns (model, inputs): weights are drawn from a
fixed seed (BatchNormalization's moving statistics too) so that every layer
does real work."""
import os

os.environ.setdefault("KERAS_BACKEND", "jax")

import numpy as np  # noqa: E402
import keras  # noqa: E402
from keras import layers as L  # noqa: E402


def randomize(model, seed):
    """Every variable from N(0, 0.5), variances positive, so nothing is trivial."""
    r = np.random.default_rng(seed)
    for w in model.weights:
        v = r.normal(0, 0.5, size=w.shape).astype("float32")
        if "variance" in w.path:
            v = np.abs(v) + 0.5
        w.assign(v)


def seq_dense():
    m = keras.Sequential([
        keras.Input((6,)),
        L.Dense(8, activation="relu", kernel_regularizer=keras.regularizers.L2(0.01)),
        L.Dropout(0.3),
        L.Dense(5, activation="tanh", use_bias=False),
        L.Dense(4, activation="elu"),
        L.Activation("softmax"),
    ], name="seq_dense")
    return m, [np.random.default_rng(1).normal(size=(5, 6)).astype("float32")]


def seq_cnn():
    m = keras.Sequential([
        keras.Input((9, 9, 2)),
        L.ZeroPadding2D(((1, 0), (2, 1))),
        L.Conv2D(4, 3, strides=2, padding="same", activation="relu"),
        L.BatchNormalization(),
        L.MaxPooling2D(2, padding="same"),
        L.Conv2D(4, (2, 2), groups=2, activation="sigmoid"),
        L.AveragePooling2D(1),
        L.Flatten(),
        L.Dropout(0.5),
        L.Dense(3),
    ], name="seq_cnn")
    return m, [np.random.default_rng(2).normal(size=(4, 9, 9, 2)).astype("float32")]


def seq_pool2d():
    m = keras.Sequential([
        keras.Input((8, 8, 3)),
        L.Conv2D(4, 3, padding="same", dilation_rate=2, activation="gelu"),
        L.AveragePooling2D(2, strides=1, padding="same"),
        L.GlobalAveragePooling2D(keepdims=True),
        L.Flatten(),
        L.Dense(2, activation="softplus"),
    ], name="seq_pool2d")
    return m, [np.random.default_rng(3).normal(size=(3, 8, 8, 3)).astype("float32")]


def seq_pool2d_max():
    m = keras.Sequential([
        keras.Input((6, 6, 2)),
        L.Conv2D(3, 2),
        L.GlobalMaxPooling2D(),
        L.Dense(2, activation="selu"),
    ], name="seq_pool2d_max")
    return m, [np.random.default_rng(4).normal(size=(3, 6, 6, 2)).astype("float32")]


def seq_conv1d():
    m = keras.Sequential([
        keras.Input((12, 3)),
        L.Conv1D(4, 3, padding="causal", dilation_rate=2, activation="swish"),
        L.MaxPooling1D(2),
        L.Conv1D(4, 2, strides=2, padding="same"),
        L.AveragePooling1D(2, padding="same"),
        L.LayerNormalization(),
        L.GlobalAveragePooling1D(),
        L.Dense(2),
    ], name="seq_conv1d")
    return m, [np.random.default_rng(5).normal(size=(3, 12, 3)).astype("float32")]


def seq_rnn():
    m = keras.Sequential([
        keras.Input((7, 3)),
        L.SimpleRNN(5, return_sequences=True),
        L.LSTM(4, return_sequences=True, go_backwards=True),
        L.GRU(3, return_sequences=True, reset_after=False),
        L.GRU(3),
        L.Dense(2),
    ], name="seq_rnn")
    return m, [np.random.default_rng(6).normal(size=(3, 7, 3)).astype("float32")]


def seq_embedding():
    m = keras.Sequential([
        keras.Input((6,), dtype="int32"),
        L.Embedding(20, 4),
        L.Bidirectional(L.LSTM(3, return_sequences=True)),
        L.Bidirectional(L.GRU(2), merge_mode="sum"),
        L.Dense(1, activation="sigmoid"),
    ], name="seq_embedding")
    x = np.random.default_rng(7).integers(0, 20, size=(4, 6)).astype("int32")
    return m, [x]


def seq_shapes():
    m = keras.Sequential([
        keras.Input((6,)),
        L.Dense(12),
        L.Reshape((3, 4)),
        L.Permute((2, 1)),
        L.Flatten(),
        L.RepeatVector(2),
        L.Bidirectional(L.SimpleRNN(2, return_sequences=True), merge_mode="ave"),
        L.GlobalMaxPooling1D(),
        L.Dense(3, activation="hard_sigmoid"),
    ], name="seq_shapes")
    return m, [np.random.default_rng(8).normal(size=(3, 6)).astype("float32")]


def fn_merge():
    a = keras.Input((5,), name="a")
    b = keras.Input((5,), name="b")
    shared = L.Dense(4, activation="tanh", name="shared")
    sa, sb = shared(a), shared(b)
    add = L.Add()([sa, sb])
    sub = L.Subtract()([sa, sb])
    mul = L.Multiply()([add, sub])
    avg = L.Average()([sa, sb, mul])
    cat = L.Concatenate()([avg, a])
    out1 = L.Dense(3, name="out1")(cat)
    out2 = L.Dense(1, activation="sigmoid", name="out2")(L.BatchNormalization()(mul))
    m = keras.Model([a, b], [out1, out2], name="fn_merge")
    r = np.random.default_rng(9)
    return m, [r.normal(size=(4, 5)).astype("float32"), r.normal(size=(4, 5)).astype("float32")]


def fn_rnn_state():
    x = keras.Input((6, 3), name="seq")
    o, h, c = L.LSTM(4, return_state=True, return_sequences=True)(x)
    g = L.GRU(4)(o, initial_state=[h])
    s = L.SimpleRNN(4, return_state=True)
    y, hs = s(x, initial_state=[c])
    z = L.Concatenate(axis=1)([g, y, hs])
    out = L.Dense(2)(z)
    m = keras.Model(x, out, name="fn_rnn_state")
    return m, [np.random.default_rng(10).normal(size=(3, 6, 3)).astype("float32")]


def fn_conv():
    x = keras.Input((7, 7, 2))
    c1 = L.Conv2D(3, 3, padding="same")(x)
    c2 = L.Conv2D(3, 1)(x)
    s = L.Add()([c1, c2])
    p = L.GlobalMaxPooling2D()(s)
    q = L.GlobalAveragePooling2D()(L.ZeroPadding2D()(s))
    out = L.Dense(2)(L.Concatenate()([p, q]))
    m = keras.Model(x, out, name="fn_conv")
    return m, [np.random.default_rng(11).normal(size=(2, 7, 7, 2)).astype("float32")]


ALL = [seq_dense, seq_cnn, seq_pool2d, seq_pool2d_max, seq_conv1d, seq_rnn, seq_embedding,
       seq_shapes, fn_merge, fn_rnn_state, fn_conv]


def build(fn, seed=0):
    keras.utils.set_random_seed(seed)
    m, xs = fn()
    randomize(m, seed + 100)
    return m, xs


def outputs(m, xs):
    y = m.predict(xs if len(xs) > 1 else xs[0], verbose=0)
    return [np.asarray(v) for v in (y if isinstance(y, (list, tuple)) else [y])]
