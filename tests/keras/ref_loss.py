"""Keras references for the per-sample losses (before reduction).

Writes tests/data/keras/loss/<case>.{t,p,r,y,gt,gp}.npy: y_true t, y_pred p,
the loss y = keras.losses.<fn>(t, p) (one value per sample), and the
vector-Jacobian products gt, gp of sum(y * r) for a fixed upstream r
(jax.vjp; gt only where y_true is float). Run from the repository root:
    KERAS_BACKEND=jax /opt/kvenv/bin/python tests/keras/ref_loss.py
"""
import os

os.environ.setdefault("KERAS_BACKEND", "jax")

import jax  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402

from refutil import rng, save, versions  # noqa: E402

FAMILY = "loss"
L = keras.losses


def case(name, fn, t, p, seed, grad_t=True):
    p = np.asarray(p, dtype=np.float32)
    if grad_t:
        t = np.asarray(t, dtype=np.float32)
        y, vjp = jax.vjp(fn, t, p)
    else:
        y, vjp = jax.vjp(lambda pp: fn(t, pp), p)
    r = rng(seed + 1000).uniform(-1, 1, size=np.shape(y)).astype(np.float32)
    grads = vjp(r)
    out = dict(t=t, p=p, r=r, y=np.asarray(y))
    if grad_t:
        out.update(gt=np.asarray(grads[0]), gp=np.asarray(grads[1]))
    else:
        out.update(gp=np.asarray(grads[0]))
    save(FAMILY, name, **out)


def u(seed, shape, lo=0.0, hi=1.0):
    return rng(seed).uniform(lo, hi, size=shape).astype(np.float32)


def n(seed, shape, scale=1.0):
    return (rng(seed).standard_normal(shape) * scale).astype(np.float32)


def main():
    mse, mae = L.mean_squared_error, L.mean_absolute_error
    case("mse", mse, n(1, (4, 5)), n(2, (4, 5)), 1)
    case("mse_3d", mse, n(3, (2, 3, 17)), n(4, (2, 3, 17)), 2)
    # Keras's squeeze_or_expand_to_same_rank: (N,) with (N, 1), (N, T) with (N, T, 1)
    case("mse_expand_rank1", mse, n(5, (4,)), n(6, (4, 1)), 3)
    case("mse_squeeze_pred", mse, n(7, (3, 4)), n(8, (3, 4, 1)), 4)
    case("mae", mae, n(9, (3, 6)), n(10, (3, 6)), 5)
    case("mae_long", mae, n(11, (2, 37)), n(12, (2, 37)), 6)
    case("huber", lambda t, p: L.huber(t, p, delta=0.5), n(13, (3, 6)), n(14, (3, 6)), 7)
    case("huber_delta1", lambda t, p: L.huber(t, p, delta=1.0), n(15, (2, 3, 5)), n(16, (2, 3, 5), 1.5), 8)

    bce = L.binary_crossentropy
    # probabilities, some at or beyond the clip bounds (0, 1, 1e-9)
    pb = u(17, (4, 3), 0.02, 0.98)
    pb[0, 0], pb[1, 1], pb[2, 2], pb[3, 0] = 0.0, 1.0, 1e-9, 0.9999999
    case("bce", bce, u(18, (4, 3)), pb, 9)
    case("bce_hard_labels", bce, (u(19, (3, 20)) > 0.5).astype(np.float32), u(20, (3, 20), 0.01, 0.99), 10)
    xl = n(21, (4, 3), 3.0)
    xl[0, 0], xl[1, 1], xl[2, 2] = 40.0, -40.0, 0.0
    case("bce_logits", lambda t, p: bce(t, p, from_logits=True), u(22, (4, 3)), xl, 11)
    case("bce_logits_3d", lambda t, p: bce(t, p, from_logits=True), u(23, (2, 2, 18)), n(24, (2, 2, 18), 2.0), 12)

    cce = L.categorical_crossentropy
    # unnormalised probabilities (Keras divides by the row sum), a zero entry (clipped)
    pc = u(25, (4, 5), 0.05, 1.0)
    pc[1, 2] = 0.0
    tc = np.eye(5, dtype=np.float32)[[0, 2, 4, 1]]
    case("cce", cce, tc, pc, 13)
    case("cce_soft", cce, u(26, (2, 3, 4)), u(27, (2, 3, 4), 0.1, 1.0), 14)
    case("cce_logits", lambda t, p: cce(t, p, from_logits=True), u(28, (3, 6)), n(29, (3, 6), 3.0), 15)
    case("cce_logits_long", lambda t, p: cce(t, p, from_logits=True),
         np.eye(33, dtype=np.float32)[[3, 32]], n(30, (2, 33), 10.0), 16)

    scce = L.sparse_categorical_crossentropy
    case("scce_int32", scce, np.array([0, 3, 4, 1], dtype=np.int32), u(31, (4, 5), 0.05, 1.0), 17,
         grad_t=False)
    case("scce_int32_logits", lambda t, p: scce(t, p, from_logits=True),
         np.array([2, 0, 4, 4], dtype=np.int32), n(32, (4, 5), 3.0), 18, grad_t=False)
    case("scce_int64_trailing1_logits", lambda t, p: scce(t, p, from_logits=True),
         np.array([[[1], [0], [3]], [[2], [2], [0]]], dtype=np.int64), n(33, (2, 3, 4), 2.0), 19,
         grad_t=False)
    case("scce_float_labels", scce, np.array([6.0, 0.0, 2.0], dtype=np.float32),
         u(34, (3, 7), 0.0, 1.0), 20, grad_t=False)
    print(versions())


if __name__ == "__main__":
    main()
