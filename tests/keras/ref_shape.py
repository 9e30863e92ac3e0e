"""Keras references for the shape and indexing ops (tests/test_parity_shape.c).

Forward outputs come from keras.ops / keras.layers; gradients are the JAX
vector-Jacobian products for a fixed upstream R (saved as <case>.r).

    KERAS_BACKEND=jax /opt/kvenv/bin/python tests/keras/ref_shape.py
"""
import jax
import keras
import numpy as np
from keras import ops

from refutil import rng, save, versions

F = "shape"


def f32(r, *shape):
    return r.uniform(-1, 1, size=shape).astype(np.float32)


def vjp(fn, r, *xs):
    """Output of fn(*xs) and the gradients of sum(fn(*xs) * R) for a random R."""
    y, back = jax.vjp(fn, *xs)
    R = f32(r, *y.shape)
    return np.asarray(y), R, [np.asarray(g) for g in back(R)]


def transpose(case, seed, shape, perm):
    r = rng(seed)
    x = f32(r, *shape)
    y, R, (gx,) = vjp(lambda a: ops.transpose(a, perm), r, x)
    save(F, case, x=x, perm=np.array(perm, np.int64), y=y, r=R, gx=gx)


def concat(case, seed, shapes, axis):
    r = rng(seed)
    xs = [f32(r, *s) for s in shapes]
    y, R, gs = vjp(lambda *a: ops.concatenate(list(a), axis=axis), r, *xs)
    arrays = {f"x{i}": x for i, x in enumerate(xs)}
    arrays.update({f"gx{i}": g for i, g in enumerate(gs)})
    save(F, case, y=y, r=R, **arrays)


def slice_(case, seed, shape, start, size):
    r = rng(seed)
    x = f32(r, *shape)
    y, R, (gx,) = vjp(lambda a: ops.slice(a, start, size), r, x)
    save(F, case, x=x, begin=np.array(start, np.int64), size=np.array(size, np.int64), y=y, r=R,
         gx=gx)


def pad(case, seed, shape, widths, value):
    r = rng(seed)
    x = f32(r, *shape)
    y, R, (gx,) = vjp(lambda a: ops.pad(a, widths, mode="constant", constant_values=value), r, x)
    save(F, case, x=x, widths=np.array(widths, np.int64), value=np.array(value, np.float32), y=y,
         r=R, gx=gx)


def take(case, seed, shape, idx):
    r = rng(seed)
    p = f32(r, *shape)
    y, R, (gp,) = vjp(lambda a: ops.take(a, idx, axis=0), r, p)
    save(F, case, params=p, idx=idx, y=y, r=R, gparams=gp)


def main():
    print(versions())
    transpose("transpose_2d", 1, (3, 4), (1, 0))
    transpose("transpose_nhwc_nchw", 2, (2, 3, 4, 5), (0, 3, 1, 2))
    transpose("transpose_generic", 3, (2, 3, 4, 5), (2, 0, 3, 1))
    transpose("transpose_last2", 4, (2, 3, 17, 9), (0, 1, 3, 2))
    concat("concat_last", 5, [(2, 3), (2, 1), (2, 4)], -1)
    concat("concat_first", 6, [(1, 3, 2), (3, 3, 2)], 0)
    concat("concat_middle", 7, [(2, 2, 3), (2, 5, 3), (2, 1, 3)], 1)
    slice_("slice_3d", 8, (4, 5, 6), (1, 0, 2), (2, 5, 3))
    slice_("slice_2d", 9, (6, 7), (2, 3), (3, 4))
    pad("pad_3d", 10, (2, 3, 4), ((0, 1), (1, 0), (2, 3)), 0.5)
    pad("pad_2d_zero", 11, (3, 2), ((2, 1), (0, 3)), 0.0)
    take("take_int32", 12, (7, 3), np.array([[3, 0, -1, 3, 6], [2, -7, 5, 3, 1]], np.int32))
    take("take_int64", 13, (5, 2, 3), np.array([4, 0, -2, 4], np.int64))

    idx = np.array([[0, 3, -1], [2, 4, 1]], np.int32)
    save(F, "one_hot", idx=idx, depth=np.array(4, np.int64), y=np.asarray(ops.one_hot(idx, 4)))

    r = rng(14)
    x = f32(r, 3, 4)
    layer = keras.layers.RepeatVector(5)
    y, R, (gx,) = vjp(lambda a: layer(a), r, x)
    save(F, "repeat_vector", x=x, n=np.array(5, np.int64), y=y, r=R, gx=gx)

    r = rng(15)
    emb = keras.layers.Embedding(10, 4)
    emb.build((None, 6))
    w = f32(r, 10, 4)
    emb.set_weights([w])
    ids = r.integers(0, 10, size=(2, 6)).astype(np.int32)
    ids[0, :3] = 7  # a repeated row: its gradient accumulates
    y, R, (gw,) = vjp(lambda v: emb.stateless_call([v], [], ids)[0], r, w)
    save(F, "embedding", w=w, idx=ids, y=y, r=R, gw=gw)


if __name__ == "__main__":
    main()
