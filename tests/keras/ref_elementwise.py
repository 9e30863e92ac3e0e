"""Keras references for the elementwise ops and activations
(tests/test_parity_elementwise.c).

Forward outputs come from keras.ops / keras.activations; gradients are the
JAX vector-Jacobian products for a fixed upstream R (saved as <case>.r).
Inputs include the kinks (0, ties of maximum, clip bounds, +-3 for
hard_sigmoid), where the gradient convention of JAX is the reference.

    KERAS_BACKEND=jax /opt/kvenv/bin/python tests/keras/ref_elementwise.py
"""
import jax
import keras
import numpy as np
from keras import ops

from refutil import rng, save, versions

F = "elementwise"


def f32(r, lo, hi, *shape):
    return r.uniform(lo, hi, size=shape).astype(np.float32)


def vjp(fn, r, *xs):
    """Output of fn(*xs) and the gradients of sum(fn(*xs) * R) for a random R."""
    y, back = jax.vjp(fn, *xs)
    R = r.uniform(-1, 1, size=y.shape).astype(np.float32)
    return np.asarray(y), R, [np.asarray(g) for g in back(R)]


def with_specials(x, specials):
    """x with its first elements replaced by the given values."""
    flat = x.reshape(-1).copy()
    flat[: len(specials)] = specials
    return flat.reshape(x.shape)


def binary(case, seed, fn, sa, sb, lo=-2.0, hi=2.0, b_away=False, grid=False):
    r = rng(seed)
    if grid:  # a quarter grid: many ties between a and b
        a = (r.integers(-4, 5, size=sa) / 4).astype(np.float32)
        b = (r.integers(-4, 5, size=sb) / 4).astype(np.float32)
    else:
        a = f32(r, lo, hi, *sa)
        b = f32(r, lo, hi, *sb)
    if b_away:  # denominators in +-[0.5, 2]
        b = (np.sign(b) * (0.5 + np.abs(b) * 0.75)).astype(np.float32)
        b[b == 0] = 1.0
    y, R, (ga, gb) = vjp(fn, r, a, b)
    save(F, case, a=a, b=b, y=y, r=R, ga=ga, gb=gb)


def unary(case, seed, fn, shape, lo, hi, specials=()):
    r = rng(seed)
    x = with_specials(f32(r, lo, hi, *shape), np.array(specials, np.float32))
    y, R, (gx,) = vjp(fn, r, x)
    save(F, case, x=x, y=y, r=R, gx=gx)


A = keras.activations
KINKS = [0.0, -0.0, 1e-3, -1e-3, 3.0, -3.0, 1.0, -1.0]


def main():
    print(versions())
    # binary ops over the broadcast forms
    binary("add_same", 1, ops.add, (3, 5), (3, 5))
    binary("add_row", 2, ops.add, (4, 7), (7,))
    binary("add_mid", 3, ops.add, (2, 3, 4), (3, 1))
    binary("add_outer", 4, ops.add, (5, 1), (1, 6))
    binary("add_scalar", 5, ops.add, (2, 3), ())
    binary("sub_row", 6, ops.subtract, (3, 4), (4,))
    binary("sub_row_first", 7, ops.subtract, (4,), (3, 4))
    binary("mul_row", 8, ops.multiply, (2, 3, 4), (4,))
    binary("mul_col", 9, ops.multiply, (3, 1), (3, 5))
    binary("div_row", 10, ops.divide, (3, 5), (5,), b_away=True)
    binary("div_outer", 11, ops.divide, (4, 1), (1, 3), b_away=True)
    binary("maximum_ties", 12, ops.maximum, (4, 6), (4, 6), grid=True)
    binary("maximum_row", 13, ops.maximum, (5, 6), (6,), grid=True)
    binary("minimum_ties", 14, ops.minimum, (4, 6), (4, 6), grid=True)
    binary("minimum_col", 15, ops.minimum, (5, 1), (5, 6), grid=True)
    # unary math
    unary("neg", 20, ops.negative, (3, 7), -2, 2)
    unary("square", 21, ops.square, (3, 7), -2, 2)
    unary("sqrt", 22, ops.sqrt, (3, 7), 0.01, 4)
    unary("exp", 23, ops.exp, (4, 8), -10, 10)
    unary("log", 24, ops.log, (4, 8), 0.01, 10)
    unary("abs", 25, ops.abs, (3, 7), -2, 2, [0.0, -0.0, 1e-3])
    unary("pow_2", 26, lambda x: ops.power(x, 2.0), (3, 7), -2, 2, [0.0])
    unary("pow_3", 27, lambda x: ops.power(x, 3.0), (3, 7), -2, 2, [0.0])
    unary("pow_half", 28, lambda x: ops.power(x, 0.5), (3, 7), 0.05, 4)
    unary("pow_inv", 29, lambda x: ops.power(x, -1.0), (3, 7), 0.2, 4)
    unary("pow_general", 30, lambda x: ops.power(x, 1.7), (3, 7), 0.0, 4, [0.0])
    unary("pow_neg_general", 31, lambda x: ops.power(x, -2.5), (3, 7), 0.2, 4)
    unary("scale", 32, lambda x: ops.add(ops.multiply(x, -1.5), 0.25), (3, 7), -2, 2)
    unary("clip", 33, lambda x: ops.clip(x, -0.5, 0.4), (4, 8), -1, 1, [-0.5, 0.4, 0.0])
    # activations, with their kinks among the inputs
    unary("relu", 40, A.relu, (4, 8), -3, 3, KINKS)
    unary("leaky_relu", 41, A.leaky_relu, (4, 8), -3, 3, KINKS)
    unary("leaky_relu_03", 42, lambda x: A.leaky_relu(x, negative_slope=0.3), (4, 8), -3, 3,
          KINKS)
    unary("elu", 43, A.elu, (4, 8), -4, 3, KINKS)
    unary("elu_07", 44, lambda x: A.elu(x, alpha=0.7), (4, 8), -4, 3, KINKS)
    unary("selu", 45, A.selu, (4, 8), -4, 3, KINKS)
    unary("gelu_exact", 46, lambda x: A.gelu(x, approximate=False), (4, 8), -6, 6, KINKS)
    unary("gelu_tanh", 47, lambda x: A.gelu(x, approximate=True), (4, 8), -6, 6, KINKS)
    unary("sigmoid", 48, A.sigmoid, (4, 8), -8, 8, KINKS)
    unary("hard_sigmoid", 49, A.hard_sigmoid, (4, 8), -5, 5, KINKS + [2.5, -2.5, 2.999, -2.999])
    unary("tanh", 50, A.tanh, (4, 8), -5, 5, KINKS)
    unary("softplus", 51, A.softplus, (4, 8), -30, 30, KINKS)
    unary("softsign", 52, A.softsign, (4, 8), -5, 5, KINKS)
    unary("silu", 53, A.silu, (4, 8), -8, 8, KINKS)
    unary("exponential", 54, A.exponential, (4, 8), -5, 5, KINKS)
    # wide ranges for the polynomial exp / log / tanh / erf
    wide = [("sigmoid", A.sigmoid, 30), ("tanh", A.tanh, 12), ("softplus", A.softplus, 40),
            ("silu", A.silu, 30), ("gelu_exact", lambda x: A.gelu(x, approximate=False), 8),
            ("gelu_tanh", lambda x: A.gelu(x, approximate=True), 8), ("elu", A.elu, 20),
            ("selu", A.selu, 20), ("exp", ops.exp, 85)]
    for i, (name, fn, w) in enumerate(wide):
        unary("wide_" + name, 60 + i, fn, (16, 16), -w, w)
    unary("wide_log", 70, ops.log, (16, 16), 1e-6, 1e6)
    # activations by their Keras names (softmax and log_softmax over the last axis)
    for i, name in enumerate(["linear", "relu", "sigmoid", "tanh", "softmax", "leaky_relu",
                              "elu", "selu", "gelu", "hard_sigmoid", "softplus", "softsign",
                              "silu", "swish", "exponential", "log_softmax"]):
        unary("act_" + name, 80 + i, A.get(name), (3, 5), -3, 3, [0.5, -0.25])


if __name__ == "__main__":
    main()
