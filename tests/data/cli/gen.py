"""Writes the small files read by tests/test_cli.c, with real Keras 3:
    KERAS_BACKEND=jax /opt/kvenv/bin/python tests/data/cli/gen.py
model.json            config.json of a compiled Sequential model (Input(4),
                      Dense(8, relu), Dense(3, softmax); adam,
                      sparse_categorical_crossentropy, accuracy)
model_nocompile.json  the same model never compiled (no compile_config)
legacy.h5             the model saved in the legacy Keras 2 format, and
legacy_pred.npy       Keras's predictions of it on x.npy
mnist_model.json      Input(28, 28, 1), Flatten, Dense(10, softmax); adam,
                      categorical_crossentropy, accuracy
unsupported.keras     a model with a layer Lamina lacks (LeakyReLU)
x.npy, y.npy          60 samples of 4 features, labels 0..2 (int64)
data.npz              the same as arrays x and y (x_only.npz: x alone)
data.csv              the same as columns f0..f3 and label
"""
import json
import os
import warnings
import zipfile

os.environ.setdefault("KERAS_BACKEND", "jax")
import keras  # noqa: E402
import numpy as np  # noqa: E402

out = os.path.dirname(os.path.abspath(__file__))
rng = np.random.default_rng(7)
x = rng.normal(size=(60, 4)).astype(np.float32)
y = (np.argmax(x[:, :3], axis=1)).astype(np.int64)  # learnable labels
np.save(os.path.join(out, "x.npy"), x)
np.save(os.path.join(out, "y.npy"), y)
np.savez(os.path.join(out, "data.npz"), x=x, y=y)
np.savez(os.path.join(out, "x_only.npz"), x=x)
with open(os.path.join(out, "data.csv"), "w") as f:
    f.write("f0,f1,f2,f3,label\n")
    for r, lab in zip(x, y):
        f.write(",".join(repr(float(v)) for v in r) + f",{int(lab)}\n")

keras.utils.set_random_seed(1)


def model():
    return keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(8, activation="relu"),
         keras.layers.Dense(3, activation="softmax")])


def config_json(m):
    """The config.json that model.save writes into a .keras file."""
    path = os.path.join(out, "_tmp.keras")
    m.save(path)
    with zipfile.ZipFile(path) as z:
        cfg = json.loads(z.read("config.json"))
    os.remove(path)
    return json.dumps(cfg, indent=2)


m = model()
with open(os.path.join(out, "model_nocompile.json"), "w") as f:
    f.write(config_json(m) + "\n")
m.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
with open(os.path.join(out, "model.json"), "w") as f:
    f.write(config_json(m) + "\n")
with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # Keras warns that HDF5 is a legacy format: intended
    m.save(os.path.join(out, "legacy.h5"))
np.save(os.path.join(out, "legacy_pred.npy"), m.predict(x, verbose=0).astype(np.float32))

# An MNIST model: images (28, 28, 1), one-hot labels (categorical cross-entropy).
mn = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Flatten(),
                       keras.layers.Dense(10, activation="softmax")])
mn.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
with open(os.path.join(out, "mnist_model.json"), "w") as f:
    f.write(config_json(mn) + "\n")

u = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3), keras.layers.LeakyReLU()])
u.save(os.path.join(out, "unsupported.keras"))
print("keras", keras.__version__)
