"""Keras 3 side of the weights-file interop tests (tests/test_keras_weights.c).

    interop_weights.py generate DIR [--small]
        Trains each model below for one epoch in Keras and writes, per model M:
        M.weights.h5 (model.save_weights: weights and optimizer variables),
        M.x.npy and M.y.npy (inputs and Keras's predictions), M.bx.npy and
        M.by.npy (a training batch) and M.step_y.npy (predictions after one
        train_on_batch on it, from the saved state). Legacy files: M.legacy.h5
        (model.save("x.h5")), mlp.legacy_weights.h5 (Keras 2's save_weights
        layout: layer_names on the root) and mlp.keras2.h5 (a Keras 2 model
        file: fixed-length byte strings, "name:0" weight names, no
        learning_rate among the optimizer weights). --small writes the subset
        committed in tests/data/keras/weights/ (mlp and rnn, mlp.legacy.h5).

    interop_weights.py check DIR
        For each M.lamina.weights.h5 that Lamina wrote in DIR: builds the same
        Keras model, loads the file (weights and optimizer state), compares
        its predictions with M.lamina_y.npy, trains one step on M.bx/M.by and
        compares with M.lamina_step_y.npy (both within 1e-5), and checks that
        the file has exactly the groups, datasets, shapes, dtypes and name
        attributes (str) of the file Keras itself writes for that model.

Run with KERAS_BACKEND=jax from the repository root; exits 1 with a message
on the first mismatch.
"""

import json
import os
import sys
import warnings

os.environ.setdefault("KERAS_BACKEND", "jax")

import h5py  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402
from keras import layers as L  # noqa: E402

TOL = 1e-5


def model_mlp():
    m = keras.Sequential(
        [keras.Input((4,)), L.Dense(5, activation="relu"), L.Dense(3, name="out")]
    )
    m.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse")
    return m, (4,), (3,), "float32", True


def model_cnn():
    m = keras.Sequential(
        [
            keras.Input((6, 6, 2)),
            L.Conv2D(3, (3, 3), activation="relu"),
            L.MaxPooling2D(),
            L.BatchNormalization(),
            L.Flatten(),
            L.Dense(2),
        ]
    )
    m.compile(
        optimizer=keras.optimizers.RMSprop(0.01, momentum=0.5, centered=True),
        loss="mse",
    )
    return m, (6, 6, 2), (2,), "float32", True


def model_rnn():
    m = keras.Sequential(
        [
            keras.Input((5, 3)),
            L.Bidirectional(L.LSTM(2, return_sequences=True)),
            L.SimpleRNN(3, return_sequences=True),
            L.GRU(3),
            L.Dense(1),
        ]
    )
    m.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9), loss="mse")
    return m, (5, 3), (1,), "float32", True


def model_emb():
    m = keras.Sequential(
        [
            keras.Input((5,), dtype="int32"),
            L.Embedding(10, 3),
            L.Conv1D(2, 2),
            L.MaxPooling1D(2),
            L.GlobalAveragePooling1D(),
            L.Dense(1),
        ]
    )
    lr = keras.optimizers.schedules.ExponentialDecay(0.1, 10, 0.9)
    m.compile(optimizer=keras.optimizers.Adam(lr, amsgrad=True), loss="mse")
    return m, (5,), (1,), "int32", True


def model_func():
    # Two branches of unequal length: Keras's layer order (by depth) differs
    # from the order in which the layers were created and called.
    inp = keras.Input((6,), name="x")
    short = L.Dense(4, name="short")
    long1 = L.Dense(5, name="long1")
    long2 = L.Dense(4, name="long2")
    s = short(inp)
    t = long2(long1(inp))
    n = L.LayerNormalization()(L.Add()([t, s]))
    out = L.Dense(2)(L.Concatenate()([n, s]))
    m = keras.Model(inp, out, name="func")
    m.compile(optimizer=keras.optimizers.Adagrad(0.05), loss="mse")
    return m, (6,), (2,), "float32", True


def model_misc():
    m = keras.Sequential(
        [
            keras.Input((4, 4, 2)),
            L.ZeroPadding2D(1),
            L.AveragePooling2D(2),
            L.Conv2D(2, (2, 2), padding="same"),
            L.GlobalMaxPooling2D(),
            L.RepeatVector(3),
            L.Permute((2, 1)),
            L.Reshape((6,)),
            L.Dropout(0.5),
            L.Activation("tanh"),
            L.Dense(2),
        ]
    )
    m.compile(optimizer=keras.optimizers.AdamW(0.01), loss="mse")
    return m, (4, 4, 2), (2,), "float32", False  # dropout: no step check


MODELS = {
    "mlp": model_mlp,
    "cnn": model_cnn,
    "rnn": model_rnn,
    "emb": model_emb,
    "func": model_func,
    "misc": model_misc,
}
SMALL = ["mlp", "rnn"]
LEGACY = ["mlp", "rnn"]


def data(name, in_shape, out_shape, dtype, n, seed):
    rng = np.random.default_rng(seed)
    if dtype == "int32":
        x = rng.integers(0, 10, (n,) + in_shape).astype("int32")
    else:
        x = rng.normal(size=(n,) + in_shape).astype("float32")
    y = rng.normal(size=(n,) + out_shape).astype("float32")
    return x, y


def generate(out, names, small):
    os.makedirs(out, exist_ok=True)
    for k, name in enumerate(names):
        keras.utils.set_random_seed(100 + k)
        m, ins, outs, dt, step = MODELS[name]()
        x, y = data(name, ins, outs, dt, 16, 10 + k)
        m.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)
        p = os.path.join(out, name)
        m.save_weights(p + ".weights.h5")
        if name in LEGACY and (not small or name == "mlp"):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                m.save(p + ".legacy.h5")
        px = x[:6]
        np.save(p + ".x.npy", px)
        np.save(p + ".y.npy", np.asarray(m.predict(px, verbose=0), "float32"))
        if step:
            bx, by = data(name, ins, outs, dt, 8, 50 + k)
            np.save(p + ".bx.npy", bx)
            np.save(p + ".by.npy", by)
            m.train_on_batch(bx, by)
            np.save(p + ".step_y.npy", np.asarray(m.predict(px, verbose=0), "float32"))
        if not small and name == "mlp":
            keras.utils.set_random_seed(100 + k)
            m2, *_ = MODELS[name]()
            m2.optimizer.build(m2.trainable_variables)
            m2.load_weights(p + ".weights.h5")
            write_keras2_files(m2, p, out)


def write_keras2_files(m, p, out):
    """Keras 2 layouts, written with h5py as tf.keras 2.x wrote them."""
    from keras.src.legacy.saving import legacy_h5_format

    with h5py.File(p + ".legacy_weights.h5", "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, m)
    cfg = json.loads(m.to_json())
    with h5py.File(p + ".keras2.h5", "w") as f:
        f.attrs["keras_version"] = b"2.15.0"
        f.attrs["backend"] = b"tensorflow"
        f.attrs["model_config"] = json.dumps(cfg).encode("utf8")
        g = f.create_group("model_weights")
        names = [layer.name for layer in m.layers]
        g.attrs["layer_names"] = np.array([n.encode("utf8") for n in names])
        g.attrs["backend"] = b"tensorflow"
        g.attrs["keras_version"] = b"2.15.0"
        for layer in m.layers:
            lg = g.create_group(layer.name)
            wn = [f"{layer.name}/{w.name}:0" for w in layer.weights]
            lg.attrs["weight_names"] = np.array([n.encode("utf8") for n in wn])
            for n, w in zip(wn, layer.weights):
                lg.create_dataset(n, data=np.asarray(w))
        # tf.keras 2.x Adam: iterations, then m for every variable, then v.
        og = f.create_group("optimizer_weights")
        vs = m.trainable_variables
        on = ["Adam/iter:0"] + [f"Adam/{v.path}/m:0" for v in vs]
        on += [f"Adam/{v.path}/v:0" for v in vs]
        og.attrs["weight_names"] = np.array([n.encode("utf8") for n in on])
        og.create_dataset(on[0], data=np.int64(2))
        for n, v in zip(on[1:], vs + vs):
            og.create_dataset(n, data=np.zeros(v.shape, "float32"))


def fail(msg):
    print("interop_weights: " + msg, file=sys.stderr)
    sys.exit(1)


def max_rel(a, b):
    a, b = np.asarray(a, "float64"), np.asarray(b, "float64")
    if a.shape != b.shape:
        return float("inf")
    return float(np.max(np.abs(a - b) / np.maximum(1.0, np.abs(b)), initial=0.0))


def layout(path):
    """{object path: (kind, shape, dtype, type of the name attribute)}."""
    items = {}

    def visit(name, obj):
        if isinstance(obj, h5py.Dataset):
            dt = str(obj.dtype)
            if name == "optimizer/vars/0":
                dt = "int"  # iterations: int32 under JAX, int64 elsewhere
            items[name] = ("dataset", obj.shape, dt, None)
        else:
            # Automatic names follow each side's counters (Keras's are per
            # process): the attribute must be there, as a string.
            nm = obj.attrs.get("name")
            items[name] = ("group", None, None, None if nm is None else type(nm).__name__)

    with h5py.File(path, "r") as f:
        f.visititems(visit)
    return items


def check(d):
    done = 0
    for k, name in enumerate(MODELS):
        p = os.path.join(d, name)
        if not os.path.exists(p + ".lamina.weights.h5"):
            continue
        keras.utils.set_random_seed(100 + k)
        m, *_rest, step = MODELS[name]()
        m.optimizer.build(m.trainable_variables)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            m.load_weights(p + ".lamina.weights.h5")
        for w in caught:
            if "Skipping variable loading" in str(w.message):
                fail(f"{name}: Keras did not load Lamina's optimizer state: {w.message}")
        x = np.load(p + ".x.npy")
        e = max_rel(m.predict(x, verbose=0), np.load(p + ".lamina_y.npy"))
        if not e <= TOL:
            fail(f"{name}: Keras's predictions from Lamina's file differ by {e:.3g}")
        # The same layout as Keras's own file for this model.
        mine = p + ".keras_resaved.weights.h5"
        m.save_weights(mine)
        a, b = layout(p + ".lamina.weights.h5"), layout(mine)
        if a != b:
            diff = sorted(set(a.items()) ^ set(b.items()), key=str)[:6]
            fail(f"{name}: Lamina's layout differs from Keras's: {diff}")
        if step:
            m.train_on_batch(np.load(p + ".bx.npy"), np.load(p + ".by.npy"))
            e = max_rel(m.predict(x, verbose=0), np.load(p + ".lamina_step_y.npy"))
            if not e <= TOL:
                fail(f"{name}: after one step from Lamina's optimizer state, Keras "
                     f"differs from Lamina by {e:.3g}")
        done += 1
        print(f"{name}: Keras loads Lamina's file: predictions and one step match, same layout")
    if done == 0:
        fail(f"no *.lamina.weights.h5 in {d}")


def main(argv):
    if len(argv) >= 3 and argv[1] == "generate":
        small = "--small" in argv[3:]
        generate(argv[2], SMALL if small else list(MODELS), small)
    elif len(argv) == 3 and argv[1] == "check":
        check(argv[2])
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
