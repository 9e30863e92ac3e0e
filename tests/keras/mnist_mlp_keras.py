"""Trains examples/mnist_mlp.c's model in Keras to measure the accuracy the
Lamina example must reach (within half a point): MNIST downscaled to 10x10 by
area averaging, Dense(64, relu, input_dim=100) -> Dense(10, softmax), Adam,
categorical cross-entropy, batch 32, 10 epochs, for seeds 1, 2 and 3.

    KERAS_BACKEND=jax /opt/kvenv/bin/python tests/keras/mnist_mlp_keras.py

Writes tests/data/keras/mnist_mlp/keras_accuracy.txt: one "seed accuracy"
line per seed, then "mean <accuracy>", the number test_e2e_examples uses."""

import gzip
import os
import sys

import numpy as np

os.environ.setdefault("KERAS_BACKEND", "jax")
import keras  # noqa: E402

EPOCHS, BATCH, SEEDS = 10, 32, (1, 2, 3)
HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.environ.get("LAMINA_DATA") or os.path.join(HERE, "..", "..", "..", "shared", "data")
OUT = os.path.join(HERE, "..", "data", "keras", "mnist_mlp", "keras_accuracy.txt")


def idx(name):
    with gzip.open(os.path.join(DATA, "mnist", name)) as f:
        raw = f.read()
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim).reshape(dims)


def area_weights(n_in, n_out):
    """W[o, i]: the overlap of output cell o, [o*s, (o+1)*s) with s = n_in/n_out,
    with input pixel [i, i+1), divided by s (tf.image.resize's "area")."""
    s = n_in / n_out
    w = np.zeros((n_out, n_in))
    for o in range(n_out):
        lo, hi = o * s, (o + 1) * s
        for i in range(n_in):
            w[o, i] = max(0.0, min(hi, i + 1) - max(lo, i)) / s
    return w


def downscale(x):
    w = area_weights(28, 10)
    x = x.astype("float32") / 255.0
    return np.einsum("oi,nij,pj->nop", w, x, w).reshape(len(x), 100).astype("float32")


def main():
    xtr, ytr = downscale(idx("train-images-idx3-ubyte.gz")), idx("train-labels-idx1-ubyte.gz")
    xte, yte = downscale(idx("t10k-images-idx3-ubyte.gz")), idx("t10k-labels-idx1-ubyte.gz")
    ytr, yte = keras.utils.to_categorical(ytr, 10), keras.utils.to_categorical(yte, 10)
    accs = []
    for seed in SEEDS:
        keras.utils.set_random_seed(seed)
        m = keras.Sequential(
            [
                keras.Input((100,)),
                keras.layers.Dense(64, activation="relu"),
                keras.layers.Dense(10, activation="softmax"),
            ]
        )
        m.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
        m.fit(xtr, ytr, epochs=EPOCHS, batch_size=BATCH, verbose=0)
        acc = m.evaluate(xte, yte, verbose=0)[1]
        print(f"seed {seed}: test accuracy: {acc:.4f}", flush=True)
        accs.append(acc)
    mean = float(np.mean(accs))
    print(f"mean test accuracy: {mean:.4f} (Keras {keras.__version__}, {keras.backend.backend()})")
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        f.write(
            f"# Keras {keras.__version__} ({keras.backend.backend()}) test accuracy of "
            f"examples/mnist_mlp.c's model, {EPOCHS} epochs, batch {BATCH}; written by "
            "tests/keras/mnist_mlp_keras.py\n"
        )
        for seed, acc in zip(SEEDS, accs):
            f.write(f"seed {seed} {acc:.4f}\n")
        f.write(f"mean {mean:.4f}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
