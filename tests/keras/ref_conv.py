"""Keras references for convolution and pooling (tests/test_parity_conv.c).

Conv1D / Conv2D run as real Keras layers (use_bias=False) with a fixed
kernel set through set_weights; pooling layers run as they are. Gradients
are the JAX vector-Jacobian products of the layer's stateless_call for a
fixed upstream R (<case>.r): <case>.gx for the input, <case>.gw for the
kernel.

    KERAS_BACKEND=jax /opt/kvenv/bin/python tests/keras/ref_conv.py
"""
import jax
import keras
import numpy as np

from refutil import rng, save, versions

F = "conv"


def f32(a):
    return np.asarray(a, np.float32)


def vjp(fn, r, *xs):
    """Output of fn(*xs) and the gradients of sum(fn(*xs) * R) for a random R."""
    y, back = jax.vjp(fn, *xs)
    R = f32(r.uniform(-1, 1, size=y.shape))
    return np.asarray(y), R, [np.asarray(g) for g in back(R)]


def conv(case, seed, rank, xshape, kernel, filters, strides=1, padding="valid", dilation=1,
         groups=1):
    r = rng(seed)
    layer_cls = keras.layers.Conv2D if rank == 2 else keras.layers.Conv1D
    layer = layer_cls(filters, kernel, strides=strides, padding=padding, dilation_rate=dilation,
                      groups=groups, use_bias=False)
    x = f32(r.uniform(-1, 1, size=xshape))
    layer.build(xshape)
    w = f32(r.uniform(-0.5, 0.5, size=layer.kernel.shape))
    layer.set_weights([w])
    y_layer = np.asarray(layer(x))

    def fn(x, w):
        return layer.stateless_call([w], [], x)[0]

    y, R, (gx, gw) = vjp(fn, r, x, w)
    assert np.allclose(y, y_layer, atol=1e-6)
    save(F, case, x=x, w=w, y=y, r=R, gx=gx, gw=gw)


def pool(case, seed, kind, xshape, size, strides=None, padding="valid"):
    r = rng(seed)
    cls = {"max2": keras.layers.MaxPooling2D, "avg2": keras.layers.AveragePooling2D,
           "max1": keras.layers.MaxPooling1D, "avg1": keras.layers.AveragePooling1D}[kind]
    layer = cls(pool_size=size, strides=strides, padding=padding)
    # Distinct values, so that the max-pooling gradient has no ties.
    n = int(np.prod(xshape))
    x = f32((r.permutation(n).reshape(xshape) - n / 2) / n * 4)
    y, R, (gx,) = vjp(lambda x: layer(x), r, x)
    save(F, case, x=x, y=y, r=R, gx=gx)


def main():
    print(versions())
    # Conv2D
    conv("conv2d_valid", 1, 2, (2, 7, 8, 3), (3, 3), 4)
    conv("conv2d_same_s2", 2, 2, (2, 8, 7, 3), (3, 3), 5, strides=2, padding="same")
    conv("conv2d_same_k4_s2", 3, 2, (1, 9, 8, 2), (4, 4), 3, strides=2, padding="same")
    conv("conv2d_dilation2", 4, 2, (2, 9, 9, 2), (3, 3), 4, padding="same", dilation=2)
    conv("conv2d_dilation_valid", 5, 2, (1, 9, 10, 2), (3, 2), 3, dilation=(2, 3))
    conv("conv2d_groups2", 6, 2, (2, 6, 7, 4), (3, 3), 6, groups=2)
    conv("conv2d_strides_12", 7, 2, (2, 7, 9, 3), (2, 3), 4, strides=(1, 2), padding="same")
    conv("conv2d_cin1", 8, 2, (2, 10, 10, 1), (3, 3), 32)
    conv("conv2d_pointwise", 9, 2, (2, 5, 6, 4), (1, 1), 3)
    # Conv1D
    conv("conv1d_valid", 11, 1, (2, 10, 3), 3, 4)
    conv("conv1d_causal_d2", 12, 1, (2, 10, 2), 3, 3, padding="causal", dilation=2)
    conv("conv1d_same_s2", 13, 1, (2, 9, 3), 4, 2, strides=2, padding="same")
    conv("conv1d_groups2", 14, 1, (2, 8, 4), 3, 4, groups=2)
    # Pooling
    pool("max2d_valid", 21, "max2", (2, 6, 7, 3), 2)
    pool("max2d_same_s2", 22, "max2", (2, 7, 7, 2), 3, strides=2, padding="same")
    pool("max2d_strides", 23, "max2", (2, 6, 8, 2), (2, 3), strides=(1, 2))
    pool("avg2d_same_s2", 24, "avg2", (2, 7, 7, 2), 3, strides=2, padding="same")
    pool("avg2d_valid", 25, "avg2", (2, 6, 8, 3), (2, 3), strides=(2, 1))
    pool("avg2d_same", 26, "avg2", (1, 5, 6, 2), 2, strides=1, padding="same")
    pool("max1d_same_s2", 27, "max1", (2, 9, 3), 3, strides=2, padding="same")
    pool("max1d_valid", 28, "max1", (2, 9, 2), 2)
    pool("avg1d_same_s2", 29, "avg1", (2, 9, 3), 3, strides=2, padding="same")
    pool("avg1d_valid", 30, "avg1", (2, 9, 2), 2)


if __name__ == "__main__":
    main()
