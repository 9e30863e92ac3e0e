"""Expected progress-bar output from the real keras.utils.Progbar.

Each case is a script of updates, each at a fake clock reading. It writes
tests/data/keras/progbar/<case>.events (the script, replayed by
tests/test_progbar.c) and <case>.txt (the exact bytes Keras writes). The bar
is built as ProgbarLogger builds it (stateless_metrics=set(), unit "step")
and gets the logs with sorted keys, val_ ones last, as Keras's JAX trainer
hands them over; the .events file lists them loss-first, as Lamina's fit
does, so the replay also checks the ordering. Run from the repository root:
    KERAS_BACKEND=jax /opt/kvenv/bin/python tests/keras/ref_progbar.py
"""
import io
import os
import sys
import time

os.environ.setdefault("KERAS_BACKEND", "jax")

from keras.src.utils import progbar as progbar_mod  # noqa: E402

from refutil import ROOT, versions  # noqa: E402

FAMILY = "progbar"


def keras_order(logs):
    train = sorted(k for k in logs if not k.startswith("val_"))
    val = sorted(k for k in logs if k.startswith("val_"))
    return [(k, logs[k]) for k in train + val]


def run(name, target, verbose, start, updates):
    """updates: (time, current, finalize, {key: value}) in call order. With
    verbose 2, ProgbarLogger only makes the final update, so only that one
    reaches the bar."""
    now = [start]
    real_time, real_stdout = time.time, sys.stdout
    out = io.StringIO()
    time.time = lambda: now[0]
    sys.stdout = out
    try:
        bar = progbar_mod.Progbar(target, verbose=verbose, stateless_metrics=set(),
                                  unit_name="step")
        for t, current, finalize, logs in updates:
            if verbose == 2 and not finalize:
                continue
            now[0] = t
            bar.update(current, keras_order(logs), finalize=finalize)
    finally:
        time.time, sys.stdout = real_time, real_stdout
    d = os.path.join(ROOT, FAMILY)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, f"{name}.txt"), "wb") as f:
        f.write(out.getvalue().encode("utf-8"))
    with open(os.path.join(d, f"{name}.events"), "w") as f:
        f.write(f"target {-1 if target is None else target}\nverbose {verbose}\nstart {start!r}\n")
        for t, current, finalize, logs in updates:
            kv = " ".join(f"{k}={v!r}" for k, v in logs.items())
            f.write(f"update {t!r} {current} {int(finalize)} {kv}".rstrip() + "\n")


def fit_epoch(t0, steps, dt, first, metrics, val=None):
    """A fit epoch as ProgbarLogger drives it: unfinalized updates after every
    batch, then a final one with the epoch logs."""
    ups, t = [], t0 + first
    for s in range(1, steps + 1):
        logs = {"loss": metrics[0] / s, "accuracy": 1 - metrics[1] / s}
        ups.append((t, s, False, logs))
        t += dt
    final = dict(ups[-1][3])
    if val:
        final.update(val)
    ups.append((t, steps, True, final))
    return ups


def main():
    # a fit epoch with validation: 5 steps, some updates closer than 0.05 s
    ups = fit_epoch(100.0, 5, 0.03, 0.4, (0.9, 0.5), {"val_loss": 0.4321, "val_accuracy": 0.87654})
    run("fit_val", 5, 1, 100.0, ups)
    run("fit_val_verbose2", 5, 2, 100.0, ups)
    # 1875 steps (4 digits) at 1 ms per step, only some of them drawn
    ups = [(10.0 + 0.002 + 0.001 * (s - 1), s, False, {"loss": 2.0 / s, "accuracy": 0.1 + s / 2500})
           for s in (1, 2, 60, 61, 500, 1200, 1874, 1875)]
    ups.append((12.0, 1875, True, {"loss": 0.0656, "accuracy": 0.98}))
    run("mnist_steps", 1875, 1, 10.0, ups)
    run("mnist_steps_verbose2", 1875, 2, 10.0, ups)
    # ETAs in seconds, minutes and hours; step times in s, ms and us
    ups = [(0.0 + 5.0, 1, False, {"loss": 1.0}), (9.0, 2, False, {"loss": 0.9}),
           (20.0, 3, False, {"loss": 0.8}), (20.5, 4, False, {"loss": 0.7}),
           (20.6, 5, False, {"loss": 0.6}), (4000.0, 6, False, {"loss": 0.5}),
           (4000.00001, 7, False, {"loss": 0.4}), (4000.2, 7, True, {"loss": 0.3})]
    run("eta_formats", 1000, 1, 0.0, ups)
    ups = [(0.5, 1, False, {"loss": 0.5}), (0.5000004, 2, False, {"loss": 0.25}),
           (0.6, 3, True, {"loss": 0.125})]
    run("fast_steps", 3, 1, 0.0, ups)
    # value formats: small (%.4e), negative, zero, nan, inf, large; verbose 2 uses avg > 1e-3
    vals = {"loss": 0.000123456, "mae": -0.5, "zero": 0.0, "nan_metric": float("nan"),
            "big": 12345.678901, "inf_metric": float("inf"), "neg_small": -0.0004}
    run("value_formats", 2, 1, 0.0, [(0.1, 1, False, vals), (0.2, 2, True, vals)])
    run("value_formats_verbose2", 2, 2, 0.0, [(0.1, 1, False, vals), (0.2, 2, True, vals)])
    # the line shrinks: padding with spaces over the previous width
    ups = [(1.0, 1, False, {"loss": 123.4567}), (2.0, 2, False, {"loss": 0.5}),
           (3.0, 3, True, {"loss": 0.25})]
    run("shrinking", 3, 1, 0.0, ups)
    # unknown number of steps (predict on a generator): "%7d/Unknown"
    ups = [(0.2, 1, False, {}), (0.4, 2, False, {}), (0.6, 3, False, {}), (0.7, 3, True, {})]
    run("unknown_target", None, 1, 0.0, ups)
    run("unknown_target_verbose2", None, 2, 0.0, ups)
    # predict: no metrics at all, one step
    run("predict_one_step", 1, 1, 0.0, [(0.03, 1, False, {}), (0.031, 1, True, {})])
    print("wrote tests/data/keras/progbar with", versions())


if __name__ == "__main__":
    main()
