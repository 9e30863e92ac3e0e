"""Keras references for the Keras layers (tests/test_parity_layers.c) and the
regularisation losses (tests/test_regularizers.c).

To keep the dumps small, inputs, weights and upstream gradients are not
stored: both sides draw them from the same integer hash (gen() below and
gen() in the C tests), whose values are exact in float32. Per case one file
<case>.ref.npy holds, flattened and joined in this order:

  y            the layer's output
  gx...        the gradient of sum(y * R) for each float input
  gw...        ... for each trainable weight (Keras order)
  moving...    BatchNormalization in training: the moving statistics after the call

The gradients are JAX vector-Jacobian products of layer.stateless_call. Array
k of a case (inputs first, then the weights in get_weights order, then R)
uses seed fnv1a(case) + 7919 * k.

    KERAS_BACKEND=jax /opt/kvenv/bin/python tests/keras/ref_layers.py
"""
import jax
import keras
import numpy as np

from refutil import save, versions

F = "layers"
L = keras.layers
M32 = 0xFFFFFFFF


def fnv1a(s):
    h = 2166136261
    for b in s.encode():
        h = ((h ^ b) * 16777619) & M32
    return h


def gen(seed, shape, scale=1.0, offset=0.0):
    """Values in [-1, 1] on a 1e-6 grid from a 32-bit hash of (seed, index),
    times a power-of-two scale plus an offset (exact in both languages)."""
    n = int(np.prod(shape)) if len(shape) else 1
    i = np.arange(n, dtype=np.uint64)
    x = (i * np.uint64(2654435761) + np.uint64(seed) * np.uint64(40503) + np.uint64(12345)) & np.uint64(M32)
    x ^= x >> np.uint64(15)
    x = (x * np.uint64(2246822519)) & np.uint64(M32)
    x ^= x >> np.uint64(13)
    x = (x * np.uint64(3266489917)) & np.uint64(M32)
    x ^= x >> np.uint64(16)
    v = (x % np.uint64(2000001)).astype(np.float64) / 1000000.0 - 1.0
    return (v * scale + offset).astype(np.float32).reshape(shape)


def weight_values(seed, k, name, shape):
    """Weights: moving variances and gammas around 1, the rest in [-0.5, 0.5]."""
    if name in ("moving_variance", "gamma"):
        return gen(seed + 7919 * k, shape, 0.5, 1.0)
    return gen(seed + 7919 * k, shape, 0.5)


def int_input(seed, shape, vocab):
    u = gen(seed, shape)
    return ((u.astype(np.float64) + 1.0) * 1000000.0).round().astype(np.int64) % vocab


# name: (layer factory, input shapes with the batch, training, vocabulary for int inputs)
CASES = {
    "dense_relu": (lambda: L.Dense(4, activation="relu"), [(3, 5)], False),
    "dense_3d_nobias_tanh": (lambda: L.Dense(3, use_bias=False, activation="tanh"), [(2, 3, 4)], False),
    "dense_softmax": (lambda: L.Dense(4, activation="softmax"), [(3, 5)], False),
    "conv2d_valid": (lambda: L.Conv2D(3, (3, 3)), [(2, 5, 5, 3)], False),
    "conv2d_s2_same": (lambda: L.Conv2D(4, (3, 3), strides=2, padding="same"), [(2, 6, 5, 3)], False),
    "conv2d_dil2": (lambda: L.Conv2D(2, (2, 3), dilation_rate=2), [(2, 6, 7, 2)], False),
    "conv2d_groups2_relu": (lambda: L.Conv2D(4, (3, 2), groups=2, padding="same", activation="relu"),
                            [(2, 4, 5, 4)], False),
    "conv2d_nobias_elu": (lambda: L.Conv2D(2, (2, 2), use_bias=False, activation="elu"), [(1, 4, 4, 3)], False),
    "conv1d_valid": (lambda: L.Conv1D(4, 3), [(2, 7, 3)], False),
    "conv1d_causal_dil2": (lambda: L.Conv1D(2, 3, padding="causal", dilation_rate=2, activation="tanh"),
                           [(2, 8, 3)], False),
    "conv1d_same_s2": (lambda: L.Conv1D(3, 4, strides=2, padding="same"), [(2, 9, 2)], False),
    "maxpool2d_valid": (lambda: L.MaxPooling2D((2, 2)), [(2, 5, 4, 3)], False),
    "maxpool2d_same_s2": (lambda: L.MaxPooling2D((3, 3), strides=2, padding="same"), [(2, 5, 6, 2)], False),
    "avgpool2d_valid": (lambda: L.AveragePooling2D((2, 3), strides=(1, 2)), [(2, 4, 7, 2)], False),
    "avgpool2d_same": (lambda: L.AveragePooling2D((3, 3), strides=2, padding="same"), [(2, 5, 6, 2)], False),
    "maxpool1d_valid": (lambda: L.MaxPooling1D(2), [(2, 7, 3)], False),
    "maxpool1d_same": (lambda: L.MaxPooling1D(3, strides=2, padding="same"), [(2, 8, 2)], False),
    "avgpool1d_same": (lambda: L.AveragePooling1D(3, strides=2, padding="same"), [(2, 9, 2)], False),
    "avgpool1d_valid": (lambda: L.AveragePooling1D(2, strides=1), [(2, 6, 3)], False),
    "gap2d": (lambda: L.GlobalAveragePooling2D(), [(2, 3, 4, 5)], False),
    "gmp2d": (lambda: L.GlobalMaxPooling2D(), [(2, 3, 4, 5)], False),
    "gap1d": (lambda: L.GlobalAveragePooling1D(), [(2, 6, 3)], False),
    "gmp1d": (lambda: L.GlobalMaxPooling1D(), [(2, 6, 3)], False),
    "gap2d_keepdims": (lambda: L.GlobalAveragePooling2D(keepdims=True), [(2, 3, 3, 4)], False),
    "zeropad2d_default": (lambda: L.ZeroPadding2D(), [(2, 2, 3, 2)], False),
    "zeropad2d_asym": (lambda: L.ZeroPadding2D(((1, 2), (0, 3))), [(1, 2, 2, 3)], False),
    "bn_train": (lambda: L.BatchNormalization(), [(6, 4)], True),
    "bn_infer": (lambda: L.BatchNormalization(), [(6, 4)], False),
    "bn_4d_train_m09": (lambda: L.BatchNormalization(momentum=0.9, epsilon=1e-2), [(2, 3, 3, 4)], True),
    "bn_nocenter_train": (lambda: L.BatchNormalization(center=False), [(5, 3)], True),
    "bn_noscale_infer": (lambda: L.BatchNormalization(scale=False), [(2, 3, 3)], False),
    "bn_frozen_train": (lambda: L.BatchNormalization(trainable=False), [(6, 4)], True),
    "ln": (lambda: L.LayerNormalization(), [(3, 6)], False),
    "ln_3d_eps": (lambda: L.LayerNormalization(epsilon=1e-5), [(2, 3, 5)], False),
    "ln_nocenter": (lambda: L.LayerNormalization(center=False), [(3, 4)], False),
    "ln_noscale": (lambda: L.LayerNormalization(scale=False), [(3, 4)], False),
    "embedding": (lambda: L.Embedding(10, 4), [(3, 5)], False, 10),
    "embedding_1d": (lambda: L.Embedding(7, 3), [(6,)], False, 7),
    "add3": (lambda: L.Add(), [(2, 3, 4)] * 3, False),
    "add_broadcast": (lambda: L.Add(), [(2, 3, 4), (2, 4)], False),
    "add_ones": (lambda: L.Add(), [(2, 1, 4), (2, 3, 1)], False),
    "subtract": (lambda: L.Subtract(), [(3, 4), (3, 4)], False),
    "multiply": (lambda: L.Multiply(), [(2, 3, 2), (2, 3, 2)], False),
    "average3": (lambda: L.Average(), [(3, 4)] * 3, False),
    "concat_last": (lambda: L.Concatenate(), [(2, 3, 4), (2, 3, 2)], False),
    "concat_axis1": (lambda: L.Concatenate(axis=1), [(2, 3, 4), (2, 2, 4)], False),
    "act_relu": (lambda: L.Activation("relu"), [(3, 4)], False),
    "act_sigmoid": (lambda: L.Activation("sigmoid"), [(3, 4)], False),
    "act_tanh": (lambda: L.Activation("tanh"), [(3, 4)], False),
    "act_softmax": (lambda: L.Activation("softmax"), [(2, 3, 4)], False),
    "act_leaky_relu": (lambda: L.Activation("leaky_relu"), [(3, 4)], False),
    "act_leaky_relu_03": (lambda: L.LeakyReLU(negative_slope=0.3), [(3, 4)], False),
    "act_elu": (lambda: L.Activation("elu"), [(3, 4)], False),
    "act_elu_05": (lambda: L.ELU(alpha=0.5), [(3, 4)], False),
    "act_selu": (lambda: L.Activation("selu"), [(3, 4)], False),
    "act_gelu": (lambda: L.Activation("gelu"), [(3, 4)], False),
    "act_hard_sigmoid": (lambda: L.Activation("hard_sigmoid"), [(3, 4)], False),
    "act_softplus": (lambda: L.Activation("softplus"), [(3, 4)], False),
    "act_softsign": (lambda: L.Activation("softsign"), [(3, 4)], False),
    "act_silu": (lambda: L.Activation("silu"), [(3, 4)], False),
    "act_exponential": (lambda: L.Activation("exponential"), [(3, 4)], False),
    "dropout_infer": (lambda: L.Dropout(0.5), [(3, 4)], False),
    "flatten": (lambda: L.Flatten(), [(2, 3, 4)], False),
    "reshape_infer": (lambda: L.Reshape((3, -1)), [(2, 12)], False),
    "reshape_3d": (lambda: L.Reshape((2, 2, 3)), [(2, 4, 3)], False),
    "permute_21": (lambda: L.Permute((2, 1)), [(2, 3, 4)], False),
    "permute_312": (lambda: L.Permute((3, 1, 2)), [(2, 3, 4, 2)], False),
    "repeat_vector": (lambda: L.RepeatVector(3), [(2, 4)], False),
}


def layer_case(name, factory, shapes, training, vocab=None):
    seed = fnv1a(name)
    layer = factory()
    k = 0
    xs = []
    for s in shapes:
        xs.append(int_input(seed + 7919 * k, s, vocab) if vocab else gen(seed + 7919 * k, s))
        k += 1
    layer.build(shapes[0] if len(shapes) == 1 else shapes)
    values = []
    for w in layer.weights:
        values.append(weight_values(seed, k, w.name, tuple(w.shape)))
        k += 1
    if values:
        layer.set_weights(values)
    tv = [v.value for v in layer.trainable_variables]
    ntv = [v.value for v in layer.non_trainable_variables]
    call_args = {"training": training} if isinstance(layer, (L.BatchNormalization, L.Dropout)) else {}

    def fn(xs_, tv_):
        arg = xs_[0] if len(xs_) == 1 else list(xs_)
        return layer.stateless_call(tv_, ntv, arg, **call_args)

    if vocab:
        y, back, new_ntv = jax.vjp(lambda tv_: fn(xs, tv_), tv, has_aux=True)
    else:
        y, back, new_ntv = jax.vjp(fn, xs, tv, has_aux=True)
    R = gen(seed + 7919 * k, y.shape)
    grads = back(R)
    parts = [np.asarray(y)]
    if vocab:
        parts += [np.asarray(g) for g in grads[0]]
    else:
        parts += [np.asarray(g) for g in grads[0]] + [np.asarray(g) for g in grads[1]]
    if training and isinstance(layer, L.BatchNormalization) and layer.trainable:
        parts += [np.asarray(v) for v in new_ntv]
    save(F, name, ref=np.concatenate([p.astype(np.float32).ravel() for p in parts]))


def cnn_step():
    """One SGD step of a small CNN (Conv2D, BatchNormalization, MaxPooling2D,
    Flatten, Dense softmax): the train_on_batch loss, then every weight."""
    name = "cnn_step"
    seed = fnv1a(name)
    model = keras.Sequential([
        keras.Input((6, 6, 2)),
        L.Conv2D(3, (3, 3), activation="relu"),
        L.BatchNormalization(),
        L.MaxPooling2D((2, 2)),
        L.Flatten(),
        L.Dense(3, activation="softmax"),
    ])
    x = gen(seed, (4, 6, 6, 2))
    labels = np.array([0, 2, 1, 2])
    y = np.eye(3, dtype=np.float32)[labels]
    k = 2
    values = []
    for layer in model.layers:
        for w in layer.weights:
            values.append(weight_values(seed, k, w.name, tuple(w.shape)))
            k += 1
    model.set_weights(values)
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.1), loss="categorical_crossentropy")
    loss = model.train_on_batch(x, y)
    parts = [np.array([loss], np.float32)] + [np.asarray(w) for w in model.get_weights()]
    save(F, name, ref=np.concatenate([p.astype(np.float32).ravel() for p in parts]))


# ---- regularisation: loss values of small regularised models ----

def reg_models():
    l1, l2, l1l2 = keras.regularizers.L1, keras.regularizers.L2, keras.regularizers.L1L2
    return {
        # weight and activity penalties on Dense layers, MSE
        "reg_dense": (lambda: keras.Sequential([
            keras.Input((5,)),
            L.Dense(4, activation="tanh", kernel_regularizer=l2(0.01), bias_regularizer=l1(0.02),
                    activity_regularizer=l1l2(0.001, 0.002)),
            L.Dense(3, kernel_regularizer=l1l2(0.01, 0.01)),
        ]), (8, 5), (8, 3), "mse", None),
        # Conv2D with an activity penalty on a 4-D output, BatchNormalization gamma/beta penalties
        "reg_conv_bn": (lambda: keras.Sequential([
            keras.Input((5, 5, 2)),
            L.Conv2D(3, (3, 3), kernel_regularizer=l2(0.02), activity_regularizer=l1(0.003)),
            L.BatchNormalization(gamma_regularizer=l1(0.05), beta_regularizer=l2(0.04)),
            L.Flatten(),
            L.Dense(2, bias_regularizer=l2(0.1)),
        ]), (6, 5, 5, 2), (6, 2), "mse", None),
        # Embedding penalty; a frozen layer's penalty is not counted
        "reg_embedding_frozen": (lambda: keras.Sequential([
            keras.Input((4,)),
            L.Embedding(10, 3, embeddings_regularizer=l2(0.05)),
            L.Flatten(),
            L.Dense(4, kernel_regularizer=l2(0.3), trainable=False),
            L.Dense(2, activation="softmax", kernel_regularizer=l1(0.01)),
        ]), (8, 4), (8, 2), "categorical_crossentropy", 10),
    }


def reg_case(name, build, xshape, yshape, loss, vocab):
    """[evaluate (one batch), evaluate (batch_size N/2), test_on_batch, train_on_batch]"""
    seed = fnv1a(name)
    model = build()
    x = int_input(seed, xshape, vocab).astype(np.float32) if vocab else gen(seed, xshape)
    y = gen(seed + 7919, yshape)
    if loss == "categorical_crossentropy":
        y = np.eye(yshape[1], dtype=np.float32)[np.argmax(y, axis=1)]
    k = 2
    values = []
    for layer in model.layers:
        for w in layer.weights:
            values.append(weight_values(seed, k, w.name, tuple(w.shape)))
            k += 1
    model.set_weights(values)
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.05), loss=loss)
    n = xshape[0]
    out = [model.evaluate(x, y, batch_size=n, verbose=0),
           model.evaluate(x, y, batch_size=n // 2, verbose=0),
           model.test_on_batch(x, y),
           model.train_on_batch(x, y)]
    save(F, name, ref=np.array(out, np.float32))


def main():
    for name, spec in CASES.items():
        layer_case(name, *spec)
    cnn_step()
    for name, spec in reg_models().items():
        reg_case(name, *spec)
    print("wrote", len(CASES) + 1 + len(reg_models()), "references;", versions())


if __name__ == "__main__":
    main()
