"""Keras references for reductions, global pools and softmax.

Writes tests/data/keras/reduce/<case>.{x,r,y,gx}.npy: the input x, the output
y = f(x) from keras.ops / keras.layers, and for differentiable ops the
vector-Jacobian product gx = d(sum(y * r))/dx for a fixed upstream r (jax.vjp).
Run from the repository root:
    KERAS_BACKEND=jax /opt/kvenv/bin/python tests/keras/ref_reduce.py
"""
import os

os.environ.setdefault("KERAS_BACKEND", "jax")

import jax  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402
from keras import ops  # noqa: E402

from refutil import rng, save, versions  # noqa: E402

FAMILY = "reduce"


def case(name, fn, x, seed, grad=True):
    x = np.asarray(x, dtype=np.float32)
    if not grad:
        save(FAMILY, name, x=x, y=np.asarray(fn(x)))
        return
    y, vjp = jax.vjp(fn, x)
    r = rng(seed + 1000).uniform(-1, 1, size=np.shape(y)).astype(np.float32)
    (gx,) = vjp(r)
    save(FAMILY, name, x=x, r=r, y=np.asarray(y), gx=np.asarray(gx))


def normal(seed, shape, scale=1.0, shift=0.0):
    return (rng(seed).standard_normal(shape) * scale + shift).astype(np.float32)


def main():
    # sum / mean / max over axis sets, through each kernel path
    case("sum_last", lambda x: ops.sum(x, axis=-1), normal(1, (3, 5)), 1)
    case("sum_outer_keep", lambda x: ops.sum(x, axis=(0, 2), keepdims=True), normal(2, (2, 3, 4)), 2)
    case("sum_all", lambda x: ops.sum(x), normal(3, (4, 6)), 3)
    case("sum_lead", lambda x: ops.sum(x, axis=0), normal(4, (9, 5)), 4)
    # long rows and columns: accumulation precision (values with a large mean)
    case("sum_long_rows", lambda x: ops.sum(x, axis=1), normal(5, (2, 6000), 1.0, 3.0), 5)
    case("sum_long_cols", lambda x: ops.sum(x, axis=0), normal(6, (3000, 3), 1.0, 3.0), 6)
    case("mean_middle", lambda x: ops.mean(x, axis=1), normal(7, (2, 5, 3)), 7)
    case("mean_lead_keep", lambda x: ops.mean(x, axis=0, keepdims=True), normal(8, (7, 3)), 8)
    case("mean_neg_axes", lambda x: ops.mean(x, axis=(-1, -2)), normal(9, (2, 3, 4)), 9)
    case("mean_all", lambda x: ops.mean(x), normal(10, (3, 4, 5)), 10)
    case("max_last", lambda x: ops.max(x, axis=-1), normal(11, (4, 7)), 11)
    case("max_middle", lambda x: ops.max(x, axis=1), normal(12, (2, 5, 3)), 12)
    case("max_outer_keep", lambda x: ops.max(x, axis=(0, 2), keepdims=True), normal(13, (3, 2, 4)), 13)
    case("max_long", lambda x: ops.max(x, axis=-1), normal(14, (3, 50)), 14)
    # ties: jax.grad of jnp.max splits the gradient equally among them
    ties = np.array([[1, 3, 3, 0], [2, 2, 2, 2], [5, 1, 5, 5]], dtype=np.float32)
    case("max_ties", lambda x: ops.max(x, axis=-1), ties, 15)
    case("max_ties_cols", lambda x: ops.max(x, axis=0), ties, 16)

    case("argmax_last", lambda x: ops.argmax(x, axis=-1), normal(17, (4, 7)), 17, grad=False)
    case("argmax_middle", lambda x: ops.argmax(x, axis=1), normal(18, (2, 5, 3)), 18, grad=False)
    case("argmax_ties", lambda x: ops.argmax(x, axis=-1), ties, 19, grad=False)

    # global pools (channels last)
    gap2 = keras.layers.GlobalAveragePooling2D()
    gmp2 = keras.layers.GlobalMaxPooling2D()
    gap1 = keras.layers.GlobalAveragePooling1D()
    gmp1 = keras.layers.GlobalMaxPooling1D()
    gap3 = keras.layers.GlobalAveragePooling3D()
    case("global_avg_pool2d", lambda x: gap2(x), normal(20, (2, 3, 3, 4)), 20)
    case("global_max_pool2d", lambda x: gmp2(x), normal(21, (2, 3, 2, 3)), 21)
    case("global_avg_pool1d", lambda x: gap1(x), normal(22, (3, 5, 2)), 22)
    case("global_max_pool1d", lambda x: gmp1(x), normal(23, (3, 5, 2)), 23)
    case("global_avg_pool3d", lambda x: gap3(x), normal(24, (2, 2, 3, 2, 3)), 24)

    # softmax and log_softmax, including large logits (stability)
    case("softmax_last", lambda x: ops.softmax(x, axis=-1), normal(25, (3, 7), 2.0), 25)
    case("softmax_middle", lambda x: ops.softmax(x, axis=1), normal(26, (2, 5, 3), 2.0), 26)
    case("softmax_large", lambda x: ops.softmax(x, axis=-1), normal(27, (2, 40), 30.0), 27)
    case("log_softmax_last", lambda x: ops.log_softmax(x, axis=-1), normal(28, (4, 6), 2.0), 28)
    case("log_softmax_first", lambda x: ops.log_softmax(x, axis=0), normal(29, (5, 3), 2.0), 29)
    case("log_softmax_large", lambda x: ops.log_softmax(x, axis=-1), normal(30, (2, 37), 30.0), 30)
    print(versions())


if __name__ == "__main__":
    main()
