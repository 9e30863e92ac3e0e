"""Interop of .keras files and model configs between real Keras 3 and Lamina.

Run by ctest (test "interop_files") when LAMINA_KERAS_PYTHON names a Keras 3
venv's python:
    KERAS_BACKEND=jax python tests/keras/interop_files.py build/tests/interop_tool

1. Keras -> Lamina: every model of interop_models.py (every supported layer,
   Sequential and functional) saved by Keras (.keras, and legacy .h5 for some)
   loads in Lamina and predicts what Keras predicts, within 1e-5.
2. Lamina -> Keras: models built and trained in C, saved by Lamina, load in
   Keras (with their optimizer state, no warnings) and predict what Lamina
   predicts; their config.json equals what Keras writes for the model it loaded.
3. Resume: a model saved mid-training by one side continues in the other with
   the same optimizer state: the weights after more steps on both sides agree
   within 1e-5 (Adam, AdamW, SGD with momentum, RMSprop, Adagrad).
4. A Keras file using a layer Lamina lacks is refused, naming the layer.
Exit code 0 when all pass, 1 on a failure, 77 (skipped) without Keras.
"""
import json
import os
import subprocess
import sys
import tempfile
import warnings
import zipfile

os.environ.setdefault("KERAS_BACKEND", "jax")
try:
    import numpy as np
    import keras
    from keras import layers as L
except ImportError as e:  # no Keras venv: skip
    print(f"skipped: {e}")
    sys.exit(77)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import interop_models as im  # noqa: E402

TOOL = sys.argv[1] if len(sys.argv) > 1 else "build/tests/interop_tool"
TOL = 1e-5
failures = []
checks = 0


def check(cond, what):
    global checks
    checks += 1
    if not cond:
        failures.append(what)
        print("FAIL:", what, flush=True)


def rel_err(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape:
        return float("inf")
    if a.size == 0:
        return 0.0
    return float(np.max(np.abs(a - b) / np.maximum(1.0, np.abs(b))))


def tool(*args):
    return subprocess.run([TOOL, *map(str, args)], capture_output=True, text=True)


def lamina_predict(path, xs, d, tag):
    files = []
    for i, x in enumerate(xs):
        f = os.path.join(d, f"{tag}.x{i}.npy")
        np.save(f, x)
        files.append(f)
    prefix = os.path.join(d, f"{tag}.y")
    r = tool("predict", path, prefix, *files)
    if r.returncode:
        return None, r.stderr.strip()
    ys, i = [], 0
    while os.path.exists(f"{prefix}.{i}.npy"):
        ys.append(np.load(f"{prefix}.{i}.npy"))
        i += 1
    return ys, ""


def strip_ids(o):
    if isinstance(o, dict):
        return {k: strip_ids(v) for k, v in o.items() if k != "shared_object_id"}
    if isinstance(o, list):
        return [strip_ids(v) for v in o]
    return o


def diff(a, b, path=""):
    """First difference between two JSON values (numbers within 1e-6)."""
    if isinstance(a, dict) and isinstance(b, dict):
        for k in list(a) + [k for k in b if k not in a]:
            if k not in a or k not in b:
                return f"{path}/{k}: only in {'Keras' if k in b else 'Lamina'}"
            d = diff(a[k], b[k], f"{path}/{k}")
            if d:
                return d
        return None
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return f"{path}: {len(a)} vs {len(b)} items"
        for i, (x, y) in enumerate(zip(a, b)):
            d = diff(x, y, f"{path}[{i}]")
            if d:
                return d
        return None
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        return None if abs(a - b) <= 1e-6 * max(1, abs(b)) else f"{path}: {a} vs {b}"
    return None if a == b else f"{path}: {a!r} vs {b!r}"


load_error = ""


def keras_load(path):
    """keras.models.load_model, or None (the reason in load_error)."""
    global load_error
    try:
        return keras.models.load_model(path)
    except Exception as e:  # noqa: BLE001 - any failure is a finding
        load_error = f"{type(e).__name__}: {e}"
        return None


def keras_to_lamina(d):
    for fn in im.ALL:
        m, xs = im.build(fn)
        ys = im.outputs(m, xs)
        for ext in (".keras", ".h5") if fn in (im.seq_cnn, im.fn_merge, im.seq_rnn) else (".keras",):
            path = os.path.join(d, fn.__name__ + ext)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                m.save(path)
            got, err = lamina_predict(path, xs, d, fn.__name__)
            check(got is not None, f"{fn.__name__}{ext}: Lamina cannot load it: {err}")
            if got is None:
                continue
            check(len(got) == len(ys), f"{fn.__name__}{ext}: {len(got)} outputs, Keras {len(ys)}")
            for i, (g, y) in enumerate(zip(got, ys)):
                e = rel_err(g, y)
                check(e <= TOL, f"{fn.__name__}{ext}: output {i} differs from Keras by {e:.3g}")
            print(f"keras->lamina {fn.__name__}{ext}: max rel err "
                  f"{max(rel_err(g, y) for g, y in zip(got, ys)):.2e}", flush=True)


def kinds_data(kind):
    r = np.random.default_rng(5)
    if kind == "mlp":
        return [r.normal(size=(5, 6)).astype("float32")]
    if kind == "cnn":
        return [r.normal(size=(3, 8, 8, 2)).astype("float32")]
    if kind == "rnn":
        return [r.normal(size=(3, 5, 3)).astype("float32")]
    if kind == "emb":
        return [r.integers(0, 12, size=(3, 5)).astype("float32")]
    return [r.normal(size=(4, 4)).astype("float32"), r.normal(size=(4, 4)).astype("float32")]


def lamina_to_keras(d):
    for kind in ("mlp", "cnn", "rnn", "emb", "functional"):
        path = os.path.join(d, f"c_{kind}.keras")
        r = tool("build", kind, path)
        check(r.returncode == 0, f"build {kind}: {r.stderr.strip()}")
        if r.returncode:
            continue
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            m = keras_load(path)
        check(m is not None, f"c_{kind}: Keras cannot load Lamina's file: {load_error}")
        if m is None:
            continue
        msgs = [str(x.message) for x in w if "Skipping variable loading" in str(x.message)
                or "optimizer" in str(x.message).lower()]
        check(not msgs, f"c_{kind}: Keras warned while loading: {msgs}")
        check(m.optimizer is not None and int(m.optimizer.iterations.numpy()) > 0,
              f"c_{kind}: Keras sees no optimizer state")
        xs = kinds_data(kind)
        want = im.outputs(m, xs)
        got, err = lamina_predict(path, xs, d, f"c_{kind}")
        check(got is not None, f"c_{kind}: Lamina cannot load its own file: {err}")
        if got is not None:
            e = max(rel_err(g, y) for g, y in zip(got, want))
            check(e <= TOL, f"c_{kind}: Keras predicts {e:.3g} away from Lamina")
            print(f"lamina->keras c_{kind}: max rel err {e:.2e}", flush=True)
        # Lamina's config.json is what Keras writes for the model it loaded.
        mine = json.loads(zipfile.ZipFile(path).read("config.json"))
        theirs = strip_ids(json.loads(json.dumps(keras.saving.serialize_keras_object(m))))
        dd = diff(strip_ids(mine), theirs)
        check(dd is None, f"c_{kind}: config.json differs from Keras's: {dd}")


def config_files(d):
    """Keras model configs (to_json) made into .keras files by Lamina."""
    for fn in (im.seq_rnn, im.fn_rnn_state, im.seq_embedding):
        m, xs = im.build(fn)
        cfg = os.path.join(d, fn.__name__ + ".json")
        with open(cfg, "w") as f:
            f.write(m.to_json())
        out = os.path.join(d, fn.__name__ + "_cfg.keras")
        r = tool("json", cfg, out)
        check(r.returncode == 0, f"json {fn.__name__}: {r.stderr.strip()}")
        if r.returncode:
            continue
        k = keras_load(out)
        check(k is not None, f"json {fn.__name__}: Keras cannot load Lamina's file: {load_error}")
        if k is None:
            continue
        dd = diff(strip_ids(json.loads(k.to_json())), strip_ids(json.loads(m.to_json())))
        check(dd is None, f"json {fn.__name__}: the model Keras loads differs: {dd}")


def resume_model(opt):
    keras.utils.set_random_seed(3)
    m = keras.Sequential([keras.Input((6,)), L.Dense(8, activation="relu"), L.BatchNormalization(),
                          L.Dense(4, activation="tanh"), L.Dense(2)])
    im.randomize(m, 42)
    m.compile(optimizer=opt, loss="mse")
    return m


def weights_err(a, b):
    if len(a) != len(b):
        return float("inf")
    return max(rel_err(x, y) for x, y in zip(a, b))


def resume(d):
    r = np.random.default_rng(12)
    x = r.normal(size=(16, 6)).astype("float32")
    y = r.normal(size=(16, 2)).astype("float32")
    np.save(os.path.join(d, "rx.npy"), x)
    np.save(os.path.join(d, "ry.npy"), y)
    opts = {
        "adam": lambda: keras.optimizers.Adam(0.01),
        "adam_amsgrad": lambda: keras.optimizers.Adam(0.01, amsgrad=True),
        "adamw": lambda: keras.optimizers.AdamW(0.01),
        "sgd": lambda: keras.optimizers.SGD(0.05, momentum=0.9, nesterov=True),
        "rmsprop": lambda: keras.optimizers.RMSprop(0.01, momentum=0.5, centered=True),
        "adagrad": lambda: keras.optimizers.Adagrad(0.1),
        "adam_schedule": lambda: keras.optimizers.Adam(
            keras.optimizers.schedules.ExponentialDecay(0.02, 2, 0.5)),
    }
    for name, opt in opts.items():
        # Keras trains 3 steps and saves; both sides continue 3 steps.
        m = resume_model(opt())
        for _ in range(3):
            m.train_on_batch(x, y)
        mid = os.path.join(d, f"mid_{name}.keras")
        m.save(mid)
        for _ in range(3):
            m.train_on_batch(x, y)
        out = os.path.join(d, f"mid_{name}_c.keras")
        rr = tool("train", mid, out, 3, os.path.join(d, "rx.npy"), os.path.join(d, "ry.npy"))
        check(rr.returncode == 0, f"resume {name} in Lamina: {rr.stderr.strip()}")
        if rr.returncode:
            continue
        c = keras_load(out)
        check(c is not None, f"resume {name}: Keras cannot load Lamina's file: {load_error}")
        if c is None:
            continue
        e = weights_err(c.get_weights(), m.get_weights())
        check(e <= TOL, f"resume {name}: Keras->Lamina weights after 3 more steps differ by {e:.3g}")
        check(int(c.optimizer.iterations.numpy()) == 6, f"resume {name}: iterations "
              f"{int(c.optimizer.iterations.numpy())}, expected 6")
        # Lamina trains the Keras-saved file 3 steps and saves; Keras continues 3 more,
        # Lamina continues 3 more: they must agree again.
        k2 = keras_load(out)
        for _ in range(3):
            k2.train_on_batch(x, y)
        out2 = os.path.join(d, f"mid_{name}_cc.keras")
        rr = tool("train", out, out2, 3, os.path.join(d, "rx.npy"), os.path.join(d, "ry.npy"))
        check(rr.returncode == 0, f"resume {name} again in Lamina: {rr.stderr.strip()}")
        if rr.returncode:
            continue
        c2 = keras_load(out2)
        check(c2 is not None, f"resume {name}: Keras cannot load Lamina's file: {load_error}")
        if c2 is None:
            continue
        e2 = weights_err(c2.get_weights(), k2.get_weights())
        check(e2 <= TOL, f"resume {name}: Lamina->Keras weights after 3 more steps differ by {e2:.3g}")
        print(f"resume {name}: keras->lamina {e:.2e}, lamina->keras {e2:.2e}", flush=True)


def unknown_layer(d):
    m = keras.Sequential([keras.Input((4,)), L.Dense(3), L.LeakyReLU(name="leaky"), L.Dense(1)])
    path = os.path.join(d, "unknown.keras")
    m.save(path)
    got, err = lamina_predict(path, [np.zeros((1, 4), "float32")], d, "unknown")
    check(got is None, "a model with LeakyReLU loaded")
    check("LeakyReLU" in err and "leaky" in err, f"the message names neither class nor layer: {err}")
    print(f"unknown layer refused: {err}", flush=True)


def main():
    print(f"keras {keras.__version__}, backend {keras.backend.backend()}, numpy {np.__version__}",
          flush=True)
    with tempfile.TemporaryDirectory() as d:
        keras_to_lamina(d)
        lamina_to_keras(d)
        config_files(d)
        resume(d)
        unknown_layer(d)
    print(f"interop_files: {checks} checks, {len(failures)} failures")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
