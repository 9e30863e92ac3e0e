"""Keras 3 on TensorFlow (CPU) side of bench/run: one workload, one JSON line.

    python keras_tf.py --workload W1 --threads 1 --samples 32768 --min-time 2
    python keras_tf.py --versions

What a Keras user gets by default: model.compile(optimizer=Adam(1e-3), loss=...)
with no other options (on a CPU-only machine Keras 3 resolves jit_compile="auto"
to False), model.fit / model.predict on in-memory NumPy arrays, verbose=0.
The timing protocol is the one bench/workloads.c documents: warm-up fit and
predict on 10 batches, then fit 1 epoch and more epochs in one call until
--min-time has passed, then predict the whole set until --min-time has passed.
Threads: bench/run sets TF_NUM_INTRAOP_THREADS / TF_NUM_INTEROP_THREADS /
OMP_NUM_THREADS before Python starts; they are also set here through
tf.config.threading before TensorFlow runs anything.
"""
import argparse
import json
import math
import os
import sys
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")


def status_mb(key):
    """A memory line of /proc/self/status ("VmHWM", "VmRSS") in MB, or -1."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return -1.0


def build(keras, wid):
    L = keras.layers
    if wid == "W1":
        layers = [keras.Input((100,)), L.Dense(64, activation="relu"),
                  L.Dense(10, activation="softmax")]
    elif wid == "W2":
        layers = [keras.Input((28, 28, 1)), L.Conv2D(32, (3, 3), activation="relu"),
                  L.MaxPooling2D((2, 2)), L.Flatten(), L.Dense(128, activation="relu"),
                  L.Dense(10, activation="softmax")]
    elif wid == "W3":
        layers = [keras.Input((10, 1)), L.LSTM(50, return_sequences=True), L.LSTM(50),
                  L.Dense(1)]
    else:
        layers = [keras.Input((784,)), L.Dense(512, activation="relu"),
                  L.Dense(512, activation="relu"), L.Dense(10, activation="softmax")]
    model = keras.Sequential(layers)
    loss = "mse" if wid == "W3" else "sparse_categorical_crossentropy"
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=1e-3), loss=loss)
    return model


BATCH = {"W1": 32, "W2": 32, "W3": 32, "W4": 128}
X_SHAPE = {"W1": (100,), "W2": (28, 28, 1), "W3": (10, 1), "W4": (784,)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--workload", choices=sorted(BATCH))
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--samples", type=int, default=8192)
    ap.add_argument("--min-time", type=float, default=2.0)
    ap.add_argument("--versions", action="store_true")
    a = ap.parse_args()

    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(a.threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    import keras
    import numpy as np
    import_rss = status_mb("VmRSS")  # the framework alone, before any data

    if a.versions:
        print(json.dumps({"tensorflow": tf.__version__, "keras": keras.__version__,
                          "numpy": np.__version__}))
        return 0
    if not a.workload:
        ap.error("--workload is required")

    wid, batch, n = a.workload, BATCH[a.workload], a.samples
    rng = np.random.default_rng(1)
    if wid == "W3":
        x = rng.standard_normal((n,) + X_SHAPE[wid], dtype=np.float32)
        y = rng.standard_normal((n, 1), dtype=np.float32)
    else:
        x = rng.random((n,) + X_SHAPE[wid], dtype=np.float32)
        y = rng.integers(0, 10, size=(n,), dtype=np.int32)
    keras.utils.set_random_seed(1)
    model = build(keras, wid)

    nw = min(n, 10 * batch)
    model.fit(x[:nw], y[:nw], batch_size=batch, epochs=1, verbose=0)
    model.predict(x[:nw], batch_size=batch, verbose=0)

    # process_time: CPU time of all threads, to read samples per CPU-second
    t0, c0, el, epochs, loss = time.perf_counter(), time.process_time(), 0.0, 0, float("nan")
    while True:
        more = math.ceil((a.min_time - el) / (el / epochs)) if epochs else 1
        h = model.fit(x, y, batch_size=batch, epochs=more, verbose=0)
        loss = float(h.history["loss"][-1])
        epochs += more
        el = time.perf_counter() - t0
        if el >= a.min_time:
            break
    train_s, train_cpu_s = el, time.process_time() - c0

    calls, t0, c0 = 0, time.perf_counter(), time.process_time()
    while True:
        model.predict(x, batch_size=batch, verbose=0)
        calls += 1
        predict_s = time.perf_counter() - t0
        if predict_s >= a.min_time:
            break
    predict_cpu_s = time.process_time() - c0

    if not math.isfinite(loss):
        print(f"keras_tf {wid}: the loss is {loss} after training", file=sys.stderr)
        return 1
    print(json.dumps({
        "workload": wid, "framework": "keras_tf", "threads": a.threads, "batch": batch,
        "samples": n, "train_sps": epochs * n / train_s, "predict_sps": calls * n / predict_s,
        "train_s": train_s, "predict_s": predict_s, "train_cpu_s": train_cpu_s,
        "predict_cpu_s": predict_cpu_s, "train_samples": epochs * n,
        "predict_samples": calls * n, "loss": loss, "vmhwm_mb": status_mb("VmHWM"),
        "import_rss_mb": import_rss,
        "jit_compile": bool(model.jit_compile)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
