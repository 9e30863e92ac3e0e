"""Keras references for normalisation and dropout (tests/test_parity_norm.c).

BatchNormalization and LayerNormalization run as real Keras layers with the
weights set through set_weights; gradients are the JAX vector-Jacobian
products of the layer's stateless_call for a fixed upstream R (<case>.r).
Dropout is random in Keras too, so only its semantics are compared: the
scaling of kept values and the identity at inference.

    KERAS_BACKEND=jax /opt/kvenv/bin/python tests/keras/ref_norm.py
"""
import jax
import keras
import numpy as np

from refutil import rng, save, versions

F = "norm"


def f32(a):
    return np.asarray(a, np.float32)


def vjp(fn, r, *xs):
    """Output of fn(*xs) and the gradients of sum(fn(*xs) * R) for a random R."""
    y, back = jax.vjp(fn, *xs)
    R = f32(r.uniform(-1, 1, size=y.shape))
    return np.asarray(y), R, [np.asarray(g) for g in back(R)]


def batch_norm(case, seed, shape, training, scale=True, center=True, momentum=0.99,
               epsilon=1e-3, offset=0.0):
    r = rng(seed)
    C = shape[-1]
    x = f32(r.normal(offset, 2.0, size=shape))
    gamma = f32(r.uniform(0.5, 1.5, size=C))
    beta = f32(r.uniform(-1, 1, size=C))
    mm = f32(r.uniform(-1, 1, size=C) + offset)
    mv = f32(r.uniform(0.5, 2.0, size=C))
    layer = keras.layers.BatchNormalization(momentum=momentum, epsilon=epsilon, scale=scale,
                                            center=center)
    layer.build(shape)
    weights = ([gamma] if scale else []) + ([beta] if center else []) + [mm, mv]
    layer.set_weights(weights)
    ntv = [v.value for v in layer.non_trainable_variables]

    def fn(xv, *tv):
        y, _ = layer.stateless_call(list(tv), ntv, xv, training=training)
        return y

    tv = [v.value for v in layer.trainable_variables]
    y, R, grads = vjp(fn, r, x, *tv)
    # One real training call updates the moving statistics in place.
    y2 = np.asarray(layer(x, training=training))
    assert np.allclose(y, y2, atol=1e-6)
    arrays = dict(x=x, mm=mm, mv=mv, y=y, r=R, gx=grads[0],
                  mm_new=f32(layer.moving_mean.numpy()),
                  mv_new=f32(layer.moving_variance.numpy()),
                  params=np.array([momentum, epsilon], np.float32))
    i = 1
    if scale:
        arrays.update(gamma=gamma, ggamma=grads[i])
        i += 1
    if center:
        arrays.update(beta=beta, gbeta=grads[i])
    save(F, case, **arrays)


def layer_norm(case, seed, shape, scale=True, center=True, epsilon=1e-3, offset=0.0):
    r = rng(seed)
    C = shape[-1]
    x = f32(r.normal(offset, 1.5, size=shape))
    gamma = f32(r.uniform(0.5, 1.5, size=C))
    beta = f32(r.uniform(-1, 1, size=C))
    layer = keras.layers.LayerNormalization(epsilon=epsilon, scale=scale, center=center)
    layer.build(shape)
    layer.set_weights(([gamma] if scale else []) + ([beta] if center else []))

    def fn(xv, *tv):
        y, _ = layer.stateless_call(list(tv), [], xv)
        return y

    tv = [v.value for v in layer.trainable_variables]
    y, R, grads = vjp(fn, r, x, *tv)
    arrays = dict(x=x, y=y, r=R, gx=grads[0], params=np.array([epsilon], np.float32))
    i = 1
    if scale:
        arrays.update(gamma=gamma, ggamma=grads[i])
        i += 1
    if center:
        arrays.update(beta=beta, gbeta=grads[i])
    save(F, case, **arrays)


def dropout(case, seed, shape, rate):
    r = rng(seed)
    x = f32(r.uniform(0.5, 1.5, size=shape))
    layer = keras.layers.Dropout(rate, seed=seed)
    y_train = np.asarray(layer(x, training=True))
    y_infer = np.asarray(layer(x, training=False))
    save(F, case, x=x, y_train=y_train, y_infer=y_infer,
         params=np.array([rate], np.float32))


def main():
    print(versions())
    batch_norm("bn_train", 1, (4, 3, 5), True, momentum=0.9)
    batch_norm("bn_infer", 2, (4, 3, 5), False)
    batch_norm("bn_train_noscale", 3, (7, 6), True, scale=False, momentum=0.99, epsilon=1e-5)
    batch_norm("bn_train_plain", 4, (2, 3, 2, 4), True, scale=False, center=False,
               momentum=0.5)
    batch_norm("bn_train_offset", 5, (16, 3), True, momentum=0.8, offset=50.0)
    batch_norm("bn_infer_nocenter", 6, (3, 8), False, center=False)
    layer_norm("ln", 11, (3, 4, 6))
    layer_norm("ln_noscale", 12, (5, 7), scale=False)
    layer_norm("ln_nocenter", 13, (2, 9), center=False, epsilon=1e-5)
    layer_norm("ln_plain", 14, (6, 4), scale=False, center=False)
    layer_norm("ln_offset", 15, (4, 33), offset=20.0, epsilon=1e-6)
    dropout("dropout", 21, (64, 32), 0.25)


if __name__ == "__main__":
    main()
