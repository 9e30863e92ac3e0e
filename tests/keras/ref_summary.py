"""Expected model.summary() output from Keras 3 for the models that
tests/test_summary.c builds in Lamina.

Writes tests/data/keras/summary/<case>.w<cols>.txt: what model.summary()
prints to a stdout that is not a terminal when the environment says
COLUMNS=<cols> (80 is also what Keras assumes without COLUMNS and without a
terminal: tables 76 wide; 120 gives the full 88 / 108). Old files are
removed first. Every model is built
after keras.backend.clear_session(), so automatic names restart per model, as
they do in Lamina. Run from the repository root:
    KERAS_BACKEND=jax /opt/kvenv/bin/python tests/keras/ref_summary.py
"""
import contextlib
import io
import os

os.environ.setdefault("KERAS_BACKEND", "jax")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from keras import layers  # noqa: E402

from refutil import ROOT, versions  # noqa: E402

FAMILY = "summary"
WIDTHS = (80,)
# some models also at other widths, for rich's column arithmetic (keep in
# step with extra_widths in tests/test_summary.c)
EXTRA_WIDTHS = {"mlp": (60, 100, 120), "two_branch": (60, 100, 120),
                "long_names": (60, 100, 120), "lstm_state": (120,), "mnist_cnn": (120,)}


def mnist_cnn():
    return keras.Sequential([
        keras.Input((28, 28, 1)),
        layers.Conv2D(32, (3, 3), activation="relu"),
        layers.MaxPooling2D((2, 2)),
        layers.Conv2D(64, (3, 3), activation="relu"),
        layers.MaxPooling2D((2, 2)),
        layers.Flatten(),
        layers.Dropout(0.5),
        layers.Dense(10, activation="softmax"),
    ], name="mnist_cnn")


def mlp():
    return keras.Sequential([
        keras.Input((784,)),
        layers.Dense(512, activation="relu"),
        layers.Dropout(0.2),
        layers.Dense(512, activation="relu"),
        layers.Dropout(0.2),
        layers.Dense(10, activation="softmax"),
    ])


def stacked_lstm():
    return keras.Sequential([
        keras.Input((10, 8)),
        layers.LSTM(32, return_sequences=True),
        layers.LSTM(16),
        layers.Dense(1),
    ], name="stacked_lstm")


def two_branch():
    x = keras.Input((16,), name="features")
    a = layers.Dense(8, activation="relu")(x)
    b = layers.Dense(8, activation="tanh")(x)
    s = layers.Add()([a, b])
    out = layers.Dense(1)(s)
    return keras.Model(x, out, name="two_branch")


def batchnorm():
    return keras.Sequential([
        keras.Input((20,)),
        layers.Dense(64),
        layers.BatchNormalization(),
        layers.Activation("relu"),
        layers.Dense(1, activation="sigmoid"),
    ], name="batchnorm")


def lstm_state():
    x = keras.Input((5, 3))
    seq, h, c = layers.LSTM(4, return_state=True)(x)
    hc = layers.Concatenate()([h, c])
    out = layers.Dense(2)(hc)
    return keras.Model(x, out, name="lstm_state")


def chain():
    """A functional chain is shown like a Sequential model, InputLayer row included."""
    x = keras.Input((6,))
    h = layers.Dense(5, activation="relu")(x)
    return keras.Model(x, layers.Dense(2)(h))


def shared():
    """A layer called on two inputs: both calls under "Connected to"."""
    x1 = keras.Input((4,), name="left")
    x2 = keras.Input((4,), name="right")
    d = layers.Dense(3, name="shared_dense")
    s = layers.Concatenate()([d(x1), d(x2)])
    return keras.Model([x1, x2], layers.Dense(1)(s), name="siamese")


def long_names():
    """Cells wrap at spaces and fold long words, as rich does."""
    x = keras.Input((3,), name="an_input_with_a_rather_long_name")
    a = layers.Dense(2, name="a_dense_layer_whose_name_is_far_too_long_for_its_column")(x)
    b = layers.Dense(2, name="b")(x)
    c = layers.Dense(2, name="c")(x)
    s = layers.Concatenate(name="concatenate_everything")([a, b, c, a])
    return keras.Model(x, s, name="long_names")


def unbuilt():
    return keras.Sequential([layers.Dense(4), layers.Dense(1)], name="unbuilt")


def trained():
    """After training, Adam's variables are counted as "Optimizer params"."""
    m = keras.Sequential([keras.Input((3,)), layers.Dense(4, activation="relu"), layers.Dense(1)],
                         name="trained")
    m.compile(optimizer=keras.optimizers.Adam(), loss="mse")
    m.train_on_batch(np.ones((2, 3), np.float32), np.ones((2, 1), np.float32))
    return m


def text_bilstm():
    """Embedding and a Bidirectional wrapper (its weights are the two LSTMs')."""
    return keras.Sequential([
        keras.Input((20,)),
        layers.Embedding(1000, 16),
        layers.Bidirectional(layers.LSTM(8)),
        layers.Dense(1, activation="sigmoid"),
    ], name="text_bilstm")


def empty():
    return keras.Sequential(name="empty")


def unused_input():
    """An input no output needs: listed at depth 0, before the layers there."""
    x = keras.Input((3,), name="in_a")
    y = keras.Input((2,), name="unused")
    return keras.Model([x, y], layers.Dense(1)(x), name="unused_input")


def shared_chain():
    x = keras.Input((3,))
    d = layers.Dense(3)
    return keras.Model(x, d(d(x)), name="shared_chain")


def long_model_name():
    """The "Model:" line folds at the console width."""
    x = keras.Input((3,))
    return keras.Model(x, layers.Dense(1)(x), name="m" * 100)


CASES = [mnist_cnn, mlp, stacked_lstm, two_branch, batchnorm, lstm_state, chain, shared,
         long_names, unbuilt, trained, text_bilstm, empty, unused_input, shared_chain,
         long_model_name]


def main():
    d = os.path.join(ROOT, FAMILY)
    os.makedirs(d, exist_ok=True)
    for f in os.listdir(d):
        if f.endswith(".txt"):
            os.remove(os.path.join(d, f))
    for make in CASES:
        keras.backend.clear_session()
        model = make()
        for cols in WIDTHS + EXTRA_WIDTHS.get(make.__name__, ()):
            os.environ["COLUMNS"] = str(cols)
            buf = io.StringIO()
            with contextlib.redirect_stdout(buf):
                model.summary()
            with open(os.path.join(d, f"{make.__name__}.w{cols}.txt"), "wb") as f:
                f.write(buf.getvalue().encode("utf-8"))
    del os.environ["COLUMNS"]
    print("wrote tests/data/keras/summary with", versions())


if __name__ == "__main__":
    main()
