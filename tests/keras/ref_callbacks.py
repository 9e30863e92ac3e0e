"""Reference behaviour of Keras's callbacks for tests/test_callbacks.c.

The callbacks are driven hook by hook with fixed logs (no training), so the
expected results are exact: when EarlyStopping stops, which epoch it restores,
ReduceLROnPlateau's learning rates, CSVLogger's bytes, the messages printed
with verbose=1, Python's float repr and checkpoint path formatting.

    KERAS_BACKEND=jax /opt/kvenv/bin/python tests/keras/ref_callbacks.py
writes tests/data/keras/callbacks/*.txt and *.csv.
"""
import contextlib
import io
import os
import sys
import tempfile
import warnings

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import refutil  # noqa: E402  (sets KERAS_BACKEND)

import numpy as np  # noqa: E402
import keras  # noqa: E402

OUT = os.path.join(refutil.ROOT, "callbacks")
os.makedirs(OUT, exist_ok=True)
warnings.simplefilter("ignore")


def f32(v):
    """A log value as Keras hands it over: a float32 metric as a Python float."""
    return float(np.float32(v))


def model(lr=0.1):
    m = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    m.compile(optimizer=keras.optimizers.SGD(learning_rate=lr), loss="mse", metrics=["accuracy"])
    # Builds the compiled metrics, which auto mode looks up.
    m.evaluate(np.zeros((2, 2)), np.zeros((2, 1)), verbose=0)
    return m


def write(name, text):
    with open(os.path.join(OUT, name), "w", newline="") as f:
        f.write(text)


def drive(cb, m, monitor, values):
    """Runs fit's hooks with {loss, monitor} logs; returns the epoch at which
    stop_training was set (-1 if never) and the captured stdout."""
    cb.set_model(m)
    m.stop_training = False
    buf = io.StringIO()
    stop_at = -1
    epochs_run = 0
    with contextlib.redirect_stdout(buf):
        cb.on_train_begin({})
        for e, v in enumerate(values):
            logs = {"loss": f32(1.0)}
            if v is not None:
                logs[monitor] = f32(v)
            cb.on_epoch_begin(e, {})
            cb.on_epoch_end(e, logs)
            epochs_run = e + 1
            if m.stop_training:
                stop_at = e
                break
        cb.on_train_end({})
    return stop_at, epochs_run, buf.getvalue()


def fmt_values(values):
    return ",".join("none" if v is None else repr(v) for v in values)


def early_stopping():
    cases = [
        ("patience2", dict(patience=2), "val_loss", [1.0, 0.9, 0.95, 0.92, 0.91, 0.5]),
        ("min_delta", dict(patience=1, min_delta=0.05), "val_loss", [1.0, 0.97, 0.9, 0.88, 0.8, 0.7]),
        ("baseline_never", dict(patience=2, baseline=0.5), "val_loss", [1.0, 0.9, 0.8, 0.7, 0.6]),
        ("baseline_stop", dict(patience=2, baseline=0.5), "val_loss", [1.0, 0.9, 0.95, 0.97]),
        ("baseline_beaten", dict(patience=1, baseline=0.5), "val_loss", [1.0, 0.4, 0.45, 0.3, 0.35, 0.36]),
        ("start_from", dict(patience=0, start_from_epoch=2), "val_loss", [1.0, 2.0, 3.0, 3.5, 2.0]),
        ("max_auto", dict(patience=1), "val_accuracy", [0.5, 0.6, 0.6, 0.55, 0.7]),
        ("max_mode", dict(patience=1, mode="max"), "loss_like", [0.5, 0.6, 0.6, 0.55, 0.7]),
        ("min_mode", dict(patience=1, mode="min"), "val_accuracy", [0.5, 0.4, 0.45, 0.5]),
        ("restore", dict(patience=2, restore_best_weights=True), "val_loss", [1.0, 0.5, 0.7, 0.8, 0.2]),
        ("restore_no_stop", dict(patience=5, restore_best_weights=True), "val_loss", [1.0, 0.5, 0.7]),
        ("restore_baseline", dict(patience=2, baseline=0.1, restore_best_weights=True), "val_loss",
         [1.0, 0.5, 0.7, 0.8, 0.2]),
        ("patience0", dict(patience=0), "val_loss", [1.0, 1.0, 0.5]),
        ("missing", dict(patience=0), "val_loss", [None, None, None]),
        ("verbose", dict(patience=1, verbose=1, restore_best_weights=True), "val_loss",
         [0.3, 0.2, 0.25, 0.26]),
    ]
    lines, out = [], []
    for name, opts, monitor, values in cases:
        m = model()
        cb = keras.callbacks.EarlyStopping(monitor=monitor, **opts)
        stop_at, run, text = drive(cb, m, monitor, values)
        best_epoch = cb.best_epoch if cb.restore_best_weights and cb.best_weights is not None else -1
        o = " ".join(f"{k}={int(v) if isinstance(v, bool) else v}" for k, v in opts.items())
        lines.append(f"{name} monitor={monitor} {o} values={fmt_values(values)} "
                     f"stop_at={stop_at} stopped_epoch={cb.stopped_epoch} restored={best_epoch}")
        if opts.get("verbose"):
            out.append(text)
    write("early_stopping.txt", "\n".join(lines) + "\n")
    write("early_stopping_verbose.out", "".join(out))


def reduce_lr():
    cases = [
        ("patience2", dict(patience=2, factor=0.5), 0.1, [1.0, 0.9, 0.95, 0.96, 0.97, 0.98, 0.5, 0.6, 0.7]),
        ("cooldown", dict(patience=1, factor=0.1, cooldown=2, min_lr=1e-4), 0.01, [1.0] * 10),
        ("min_delta", dict(patience=1, factor=0.5, min_delta=0.1), 0.2, [1.0, 0.95, 0.85, 0.84, 0.7]),
        ("max_mode", dict(patience=1, factor=0.5, mode="max"), 0.2, [0.1, 0.2, 0.2, 0.1, 0.3]),
        ("verbose", dict(patience=1, factor=0.5, verbose=1), 0.001, [1.0, 1.0, 1.0, 0.5, 0.5]),
    ]
    lines, out = [], []
    for name, opts, lr, values in cases:
        m = model(lr)
        cb = keras.callbacks.ReduceLROnPlateau(monitor="val_loss", **opts)
        cb.set_model(m)
        buf = io.StringIO()
        lrs, logged = [], []
        with contextlib.redirect_stdout(buf):
            cb.on_train_begin({})
            for e, v in enumerate(values):
                logs = {"loss": f32(1.0), "val_loss": f32(v)}
                cb.on_epoch_end(e, logs)
                logged.append(repr(logs["learning_rate"]))
                lrs.append(repr(float(np.float32(m.optimizer.learning_rate))))
        o = " ".join(f"{k}={v}" for k, v in opts.items())
        lines.append(f"{name} lr={lr!r} {o} values={fmt_values(values)} "
                     f"logged={','.join(logged)} after={','.join(lrs)}")
        if opts.get("verbose"):
            out.append(buf.getvalue())
    write("reduce_lr.txt", "\n".join(lines) + "\n")
    write("reduce_lr_verbose.out", "".join(out))


def lr_scheduler():
    m = model(0.1)
    cb = keras.callbacks.LearningRateScheduler(lambda e, lr: lr if e < 2 else lr * 0.5, verbose=1)
    cb.set_model(m)
    buf = io.StringIO()
    logged = []
    with contextlib.redirect_stdout(buf):
        for e in range(4):
            cb.on_epoch_begin(e, {})
            logs = {"loss": 1.0}
            cb.on_epoch_end(e, logs)
            logged.append(repr(logs["learning_rate"]))
    write("lr_scheduler.txt", "logged=" + ",".join(logged) + "\n")
    write("lr_scheduler_verbose.out", buf.getvalue())


def checkpoint():
    """File names and messages; run in a temporary directory so the paths
    printed are the relative ones the C test uses too."""
    cwd = os.getcwd()
    with tempfile.TemporaryDirectory() as d:
        os.chdir(d)
        try:
            out, lines = [], []
            cases = [
                ("all", "ck/e{epoch:02d}-{val_loss:.3f}.weights.h5", dict(save_weights_only=True, verbose=1),
                 [0.5, 0.6, 0.4]),
                ("best", "best/m{epoch:03d}.weights.h5", dict(save_weights_only=True, save_best_only=True, verbose=1),
                 [0.5, 0.6, 0.4, 0.4]),
                ("best_max", "bm/acc-{val_accuracy:.2f}.weights.h5",
                 dict(save_weights_only=True, save_best_only=True, monitor="val_accuracy", verbose=1),
                 [0.5, 0.6, 0.4, 0.7]),
            ]
            for name, path, opts, values in cases:
                m = model()
                cb = keras.callbacks.ModelCheckpoint(path, **opts)
                monitor = opts.get("monitor", "val_loss")
                cb.set_model(m)
                buf = io.StringIO()
                with contextlib.redirect_stdout(buf):
                    cb.on_train_begin({})
                    for e, v in enumerate(values):
                        logs = {"loss": f32(1.0), "val_loss": f32(v), "val_accuracy": f32(v)}
                        logs[monitor] = f32(v)
                        cb.on_epoch_begin(e, {})
                        cb.on_epoch_end(e, logs)
                    cb.on_train_end({})
                files = []
                for root, _, fs in os.walk(os.path.dirname(path)):
                    files += [os.path.join(root, f) for f in fs]
                lines.append(f"{name} path={path} values={fmt_values(values)} files={','.join(sorted(files))}")
                out.append(buf.getvalue())
        finally:
            os.chdir(cwd)
    write("checkpoint.txt", "\n".join(lines) + "\n")
    write("checkpoint_verbose.out", "".join(out))


def csv_logger():
    cwd = os.getcwd()
    with tempfile.TemporaryDirectory() as d:
        os.chdir(d)
        try:
            def run(cb, rows, first_epoch=0):
                cb.on_train_begin({})
                for i, logs in enumerate(rows):
                    cb.on_epoch_end(first_epoch + i, dict(logs))
                cb.on_train_end({})

            train = [{"loss": f32(0.5), "accuracy": f32(0.25)}, {"loss": f32(0.125), "accuracy": f32(1 / 3)}]
            run(keras.callbacks.CSVLogger("no_val.csv"), train)
            with_val = [{"loss": f32(0.7), "mae": f32(0.1), "val_loss": f32(0.8), "val_mae": f32(1e-5),
                         "learning_rate": f32(0.001)},
                        {"loss": float("nan"), "mae": float("inf"), "val_loss": f32(123456.789),
                         "val_mae": f32(1e17), "learning_rate": f32(0.0001)}]
            run(keras.callbacks.CSVLogger("val.csv"), with_val)
            run(keras.callbacks.CSVLogger("semi.csv", separator=";"), with_val)
            # Appending: the header only once, epochs as given.
            run(keras.callbacks.CSVLogger("append.csv", append=True), train)
            run(keras.callbacks.CSVLogger("append.csv", append=True), train, first_epoch=2)
            # A key holding the separator and a quote is quoted; a key missing later is NA.
            odd = [{"a,b": f32(1.0), 'q"k': f32(2.0), "loss": f32(3.0)}, {"loss": f32(4.0)}]
            run(keras.callbacks.CSVLogger("quoted.csv"), odd)
            for name in ["no_val.csv", "val.csv", "semi.csv", "append.csv", "quoted.csv"]:
                with open(name, "rb") as f:
                    data = f.read()
                with open(os.path.join(OUT, name), "wb") as f:
                    f.write(data)
        finally:
            os.chdir(cwd)


def terminate_on_nan():
    m = model()
    cb = keras.callbacks.TerminateOnNaN()
    cb.set_model(m)
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        cb.on_batch_end(0, {"loss": 1.0})
        cb.on_batch_end(3, {"loss": float("nan")})
        cb.on_batch_end(4, {"loss": float("inf")})
    write("terminate_on_nan.out", buf.getvalue())


def pyfloat():
    vals = [0.0, -0.0, 1.0, 0.1, 1 / 3, 1e-5, 1e-4, 0.00012345, 1e16, 1e15, 123456789.0,
            1.5e300, 5e-324, float(np.float32(0.001)), float(np.float32(0.1)), -2.5, 100.0,
            9999999999999998.0, 1e22, float("nan"), float("inf"), float("-inf"), 0.30000000000000004]
    write("pyfloat.txt", "".join(f"{v.hex()} {v!r}\n" for v in vals))


def format_path():
    logs = {"val_loss": f32(0.123456), "loss": f32(2.5), "acc": f32(0.875), "big": f32(12345.678)}
    fmts = ["m-{epoch:02d}-{val_loss:.2f}.weights.h5", "{epoch}", "{epoch:03d}_{loss}", "e{epoch:.1f}",
            "{acc:.3e}", "{big:g}", "{big:10.1f}|", "{val_loss:%}", "{{epoch}}-{epoch}", "{loss:+.1f}",
            "{acc:.4}"]
    lines = []
    for fm in fmts:
        lines.append(f"{fm}\t7\t{fm.format(epoch=7, **logs)}")
    keys = ",".join(f"{k}={v.hex()}" for k, v in logs.items())
    write("format_path.txt", keys + "\n" + "\n".join(lines) + "\n")


if __name__ == "__main__":
    early_stopping()
    reduce_lr()
    lr_scheduler()
    checkpoint()
    csv_logger()
    terminate_on_nan()
    pyfloat()
    format_path()
    write("VERSIONS", refutil.versions() + "\n")
    print("wrote", OUT)
