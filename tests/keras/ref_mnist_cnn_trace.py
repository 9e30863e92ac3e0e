"""Keras reference for one epoch of the mnist_cnn model
(tests/test_e2e_cnn_trace.c): the loss of every training step, the final
test loss and accuracy, and checksums of the final weights.

Model: Conv2D(32, 3x3, relu) on 28x28x1 -> MaxPooling2D(2x2) -> Flatten ->
Dense(128, relu) -> Dense(10, softmax); Adam with Keras's defaults,
categorical cross-entropy, metric "accuracy", batch 32, no shuffling, inputs
x / 255 as float32 of shape (N, 28, 28, 1), one-hot labels.

The initial weights are not stored: both sides compute them with the integer
hash gen() of ref_layers.py (weight k in get_weights order uses seed
1000 + k) times a power of two near the glorot_uniform limit
sqrt(6 / (fan_in + fan_out)), so the values are exact in float32 on both
sides; biases are zeros as in Keras.

Per-step losses come from model.train_on_batch on consecutive batches: it
runs the very train_step model.fit runs (the same jitted loss, gradients and
Adam update) and resets the metrics first, so the "loss" it returns is that
batch's loss, not the running mean fit logs. As a check the script then
trains a second copy with model.fit(shuffle=False) from the same weights and
asserts both end at the same weights and that fit's epoch loss is the mean of
the per-step losses.

Writes to tests/data/keras/trace/:
  losses.npy       float32 (1875,) the loss of each step (before its update)
  losses_ulp.npy   float32 (1875,) the same with the initial conv kernel moved
                   up by one ulp: how far Keras drifts from itself through
                   float32 rounding alone (the noise floor of the comparison)
  train_acc.npy    int32 (1875,) correct predictions in each batch of 32
  final.npy        float64 [test loss, test accuracy, fit epoch loss,
                   fit epoch accuracy]
  weights.npy      float64 (6, 4): per weight (get_weights order) sum, sum of
                   squares, min, max of the final values

    KERAS_BACKEND=jax /opt/kvenv/bin/python tests/keras/ref_mnist_cnn_trace.py
"""
import gzip
import os
import time

import keras
import numpy as np

from refutil import ROOT, save, versions

F = "trace"
M32 = 0xFFFFFFFF
BATCH = 32
# Powers of two near the glorot_uniform limits 0.142, 0.0329, 0.208.
SCALES = {0: 0.125, 2: 0.03125, 4: 0.25}


def gen(seed, shape, scale=1.0):
    """ref_layers.py's hash: [-1, 1] on a 1e-6 grid, times a power of two."""
    n = int(np.prod(shape))
    i = np.arange(n, dtype=np.uint64)
    x = (i * np.uint64(2654435761) + np.uint64(seed) * np.uint64(40503) + np.uint64(12345)) & np.uint64(M32)
    x ^= x >> np.uint64(15)
    x = (x * np.uint64(2246822519)) & np.uint64(M32)
    x ^= x >> np.uint64(13)
    x = (x * np.uint64(3266489917)) & np.uint64(M32)
    x ^= x >> np.uint64(16)
    v = (x % np.uint64(2000001)).astype(np.float64) / 1000000.0 - 1.0
    return (v * scale).astype(np.float32).reshape(shape)


def mnist(split):
    default = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "shared", "data")
    d = os.path.join(os.environ.get("LAMINA_DATA", default), "mnist")
    with gzip.open(os.path.join(d, f"{split}-images-idx3-ubyte.gz")) as f:
        x = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 28, 28, 1)
    with gzip.open(os.path.join(d, f"{split}-labels-idx1-ubyte.gz")) as f:
        y = np.frombuffer(f.read(), np.uint8, offset=8)
    return x.astype("float32") / 255, keras.utils.to_categorical(y, 10).astype("float32")


def build():
    model = keras.Sequential([
        keras.Input((28, 28, 1)),
        keras.layers.Conv2D(32, (3, 3), activation="relu"),
        keras.layers.MaxPooling2D((2, 2)),
        keras.layers.Flatten(),
        keras.layers.Dense(128, activation="relu"),
        keras.layers.Dense(10, activation="softmax"),
    ])
    model.compile(optimizer=keras.optimizers.Adam(), loss="categorical_crossentropy",
                  metrics=["accuracy"])
    w = [gen(1000 + k, v.shape, SCALES[k]) if k in SCALES else np.zeros(v.shape, np.float32)
         for k, v in enumerate(model.get_weights())]
    model.set_weights(w)
    return model


def train_trace(model, x, y):
    """One epoch of train_on_batch on consecutive batches: each step's loss
    and its number of correct predictions."""
    steps = len(x) // BATCH
    losses = np.zeros(steps, np.float32)
    correct = np.zeros(steps, np.int32)
    for b in range(steps):
        xb, yb = x[b * BATCH:(b + 1) * BATCH], y[b * BATCH:(b + 1) * BATCH]
        logs = model.train_on_batch(xb, yb, return_dict=True)
        losses[b] = logs["loss"]
        correct[b] = int(round(logs["accuracy"] * BATCH))
    return losses, correct


def main():
    x, y = mnist("train")
    xt, yt = mnist("t10k")
    assert len(x) % BATCH == 0

    model = build()
    t0 = time.time()
    losses, correct = train_trace(model, x, y)
    print(f"train_on_batch epoch: {time.time() - t0:.1f} s")
    test_loss, test_acc = model.evaluate(xt, yt, batch_size=BATCH, verbose=0)

    # The same epoch through model.fit must end at the same weights.
    ref = build()
    h = ref.fit(x, y, batch_size=BATCH, epochs=1, shuffle=False, verbose=0)
    dw = max(float(np.max(np.abs(a - b))) for a, b in zip(model.get_weights(), ref.get_weights()))
    fit_loss, fit_acc = h.history["loss"][0], h.history["accuracy"][0]
    print(f"fit vs train_on_batch: max weight difference {dw:.3g}, epoch loss {fit_loss:.7f} "
          f"vs mean step loss {losses.astype(np.float64).mean():.7f}")
    assert dw < 1e-6, dw
    assert abs(fit_loss - losses.astype(np.float64).mean()) < 1e-5
    assert abs(fit_acc - correct.sum() / len(x)) < 1e-6

    # Keras's own float32 noise floor: the same epoch with every conv kernel
    # value moved by one ulp (6e-8 relative). ReLU and max-pool kinks turn
    # such rounding-level differences into diverging trajectories.
    noisy = build()
    w = noisy.get_weights()
    w[0] = np.nextafter(w[0], np.float32(np.inf))
    noisy.set_weights(w)
    losses_ulp, _ = train_trace(noisy, x, y)
    dev = np.abs(losses_ulp.astype(np.float64) - losses) / np.maximum(1, np.abs(losses))
    print(f"Keras vs Keras with the conv kernel +1 ulp: max deviation {dev.max():.3g}, first step over "
          f"1e-3: {int(np.argmax(dev > 1e-3)) if (dev > 1e-3).any() else -1}")

    stats = np.array([[w.astype(np.float64).sum(), (w.astype(np.float64) ** 2).sum(), w.min(), w.max()]
                      for w in model.get_weights()])
    save(F, "mnist_cnn", losses=losses, train_acc=correct, losses_ulp=losses_ulp)
    # refutil.save narrows float64 to float32; these stay in double.
    d = os.path.join(ROOT, F)
    np.save(os.path.join(d, "mnist_cnn.final.npy"), np.array([test_loss, test_acc, fit_loss, fit_acc]))
    np.save(os.path.join(d, "mnist_cnn.weights.npy"), stats)
    print(f"first losses {losses[:4]}, last {losses[-4:]}")
    print(f"test loss {test_loss:.6f}, test accuracy {test_acc:.4f} ({versions()})")


if __name__ == "__main__":
    main()
