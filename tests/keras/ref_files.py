"""Reference files for tests/test_keras_config.c and tests/test_keras_files.c,
written by real Keras 3 into tests/data/keras/files/:

- configs.json: {case: model.to_json()} for every model of interop_models.py
  (every layer Lamina reads, Sequential and functional), several compiled
  with other optimizers, schedules, losses and metrics. Lamina must read each
  and write it back unchanged (Keras -> Lamina -> Keras).
- fn_merge.keras with fn_merge.x0/x1/y0/y1.npy: a functional model saved by
  Keras and its inputs and outputs.
- resume.keras: a compiled model saved after 3 Adam steps; resume.x/y.npy the
  batch and resume.w<i>.npy the weights after 3 more steps in Keras.

Run from the repository root:
    KERAS_BACKEND=jax /opt/kvenv/bin/python tests/keras/ref_files.py
"""
import json
import os
import sys

os.environ.setdefault("KERAS_BACKEND", "jax")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402
import keras  # noqa: E402
from keras import layers as L  # noqa: E402

import interop_models as im  # noqa: E402
from refutil import ROOT, versions  # noqa: E402

OUT = os.path.join(ROOT, "files")
K = keras

COMPILE = {
    "seq_dense": dict(optimizer=K.optimizers.Adam(0.01), loss="categorical_crossentropy",
                      metrics=["accuracy"]),
    "seq_cnn": dict(optimizer=K.optimizers.SGD(0.1, momentum=0.9, nesterov=True),
                    loss=K.losses.CategoricalCrossentropy(from_logits=True),
                    metrics=[K.metrics.TopKCategoricalAccuracy(k=2)]),
    "seq_conv1d": dict(optimizer=K.optimizers.AdamW(
        K.optimizers.schedules.ExponentialDecay(0.01, 10, 0.5, staircase=True)), loss="mse",
        metrics=["mae", "mse"]),
    "seq_rnn": dict(optimizer=K.optimizers.Adagrad(0.05), loss="huber"),
    "seq_embedding": dict(optimizer=K.optimizers.Adam(amsgrad=True, clipnorm=1.0),
                          loss="binary_crossentropy", metrics=["binary_accuracy", "precision"]),
    "seq_shapes": dict(optimizer=K.optimizers.SGD(K.optimizers.schedules.PiecewiseConstantDecay(
        [5, 10], [0.1, 0.05, 0.01])), loss="sparse_categorical_crossentropy",
        metrics=["sparse_categorical_accuracy"]),
    "fn_merge": dict(optimizer=K.optimizers.RMSprop(0.01, momentum=0.5, centered=True),
                     loss=["mse", "binary_crossentropy"], loss_weights=[1.0, 0.5],
                     metrics=[["mae"], ["mae"]]),
    "fn_conv": dict(optimizer=K.optimizers.Adam(K.optimizers.schedules.CosineDecay(0.01, 100)),
                    loss="mae"),
}


def main():
    os.makedirs(OUT, exist_ok=True)
    configs = {}
    for fn in im.ALL:
        m, xs = im.build(fn)
        if fn.__name__ in COMPILE:
            m.compile(**COMPILE[fn.__name__])
        configs[fn.__name__] = json.loads(m.to_json())
        if fn is im.fn_merge:
            m.save(os.path.join(OUT, "fn_merge.keras"))
            for i, x in enumerate(xs):
                np.save(os.path.join(OUT, f"fn_merge.x{i}.npy"), x)
            for i, y in enumerate(im.outputs(m, xs)):
                np.save(os.path.join(OUT, f"fn_merge.y{i}.npy"), y)
    with open(os.path.join(OUT, "configs.json"), "w") as f:  # one model per line
        f.write("{\n" + ",\n".join(json.dumps(k) + ": " + json.dumps(v, separators=(",", ":"))
                                    for k, v in configs.items()) + "\n}\n")

    # resume.keras: 3 Adam steps, saved; the weights after 3 more.
    keras.utils.set_random_seed(3)
    m = keras.Sequential([keras.Input((6,)), L.Dense(8, activation="relu"),
                          L.BatchNormalization(), L.Dense(2)], name="resume")
    im.randomize(m, 42)
    m.compile(optimizer=K.optimizers.Adam(0.01), loss="mse", metrics=["mae"])
    r = np.random.default_rng(12)
    x = r.normal(size=(16, 6)).astype("float32")
    y = r.normal(size=(16, 2)).astype("float32")
    for _ in range(3):
        m.train_on_batch(x, y)
    m.save(os.path.join(OUT, "resume.keras"))
    for _ in range(3):
        m.train_on_batch(x, y)
    np.save(os.path.join(OUT, "resume.x.npy"), x)
    np.save(os.path.join(OUT, "resume.y.npy"), y)
    for i, w in enumerate(m.get_weights()):
        np.save(os.path.join(OUT, f"resume.w{i}.npy"), w)
    with open(os.path.join(OUT, "VERSIONS"), "w") as f:
        f.write(versions() + "\n")
    print("wrote", OUT, "with", versions())


if __name__ == "__main__":
    main()
