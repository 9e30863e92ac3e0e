"""Keras references for the optimizers and schedules (tests/test_parity_optim.c).

Three variables of different shapes start from common.w0 (flat, variables
end to end, sizes in common.sizes) and receive the gradients common.g[t] for
three apply_gradients steps. For each case the dump holds the flat variables
after every step (<case>.w, shape (3, n)), the learning rate each step used
(<case>.lr) and every optimizer slot after the last step, flat in variable
order (<case>.<slot>). The case list must match CASES in the C test.

    KERAS_BACKEND=jax /opt/kvenv/bin/python tests/keras/ref_optim.py
"""
import keras
import numpy as np
from keras import optimizers as O
from keras.optimizers import schedules as S

from refutil import rng, save, versions

F = "optim"
SHAPES = [(3, 4), (5,), (2, 1, 3)]
# Per-variable gradient scales: the first variable's norm exceeds clipnorm=1,
# the second stays below it.
SCALES = [2.0, 0.1, 1.0]
STEPS = 3

CASES = {
    "sgd": lambda: O.SGD(0.1),
    "sgd_default": lambda: O.SGD(),
    "sgd_momentum": lambda: O.SGD(0.1, momentum=0.9),
    "sgd_nesterov": lambda: O.SGD(0.1, momentum=0.9, nesterov=True),
    "adam": lambda: O.Adam(0.1),
    "adam_default": lambda: O.Adam(),
    "adam_amsgrad": lambda: O.Adam(0.1, beta_1=0.8, beta_2=0.5, amsgrad=True),
    "adamw": lambda: O.AdamW(0.1, weight_decay=0.1),
    "adamw_default": lambda: O.AdamW(),
    "rmsprop": lambda: O.RMSprop(0.01),
    "rmsprop_default": lambda: O.RMSprop(),
    "rmsprop_centered": lambda: O.RMSprop(0.01, centered=True),
    "rmsprop_momentum": lambda: O.RMSprop(0.01, momentum=0.9),
    "rmsprop_centered_momentum": lambda: O.RMSprop(0.01, rho=0.8, momentum=0.5, centered=True),
    "adagrad": lambda: O.Adagrad(0.1),
    "adagrad_default": lambda: O.Adagrad(),
    "sgd_clipnorm": lambda: O.SGD(0.1, clipnorm=1.0),
    "adam_clipnorm": lambda: O.Adam(0.1, clipnorm=1.0),
    "sgd_clipvalue": lambda: O.SGD(0.1, momentum=0.5, clipvalue=0.5),
    "sgd_global_clipnorm": lambda: O.SGD(0.1, global_clipnorm=1.5),
    "rmsprop_global_clipnorm": lambda: O.RMSprop(0.01, global_clipnorm=1.5),
    "sgd_weight_decay": lambda: O.SGD(0.1, momentum=0.9, weight_decay=0.05),
    "adagrad_weight_decay": lambda: O.Adagrad(0.1, initial_accumulator_value=0.5, epsilon=1e-3,
                                              weight_decay=0.01),
    "sgd_exp_decay": lambda: O.SGD(S.ExponentialDecay(0.1, 2, 0.5)),
    "adam_exp_staircase": lambda: O.Adam(S.ExponentialDecay(0.1, 2, 0.5, staircase=True)),
    "sgd_piecewise": lambda: O.SGD(S.PiecewiseConstantDecay([0, 1], [0.1, 0.05, 0.01])),
    "adam_cosine": lambda: O.Adam(S.CosineDecay(0.1, 4, alpha=0.1)),
    "adamw_cosine": lambda: O.AdamW(S.CosineDecay(0.1, 2, alpha=0.2), weight_decay=0.1),
}


def flat(arrays):
    return np.concatenate([np.asarray(a, np.float32).ravel() for a in arrays])


def main():
    r = rng(7)
    w0 = [r.uniform(-1, 1, size=s).astype(np.float32) for s in SHAPES]
    grads = [[(r.uniform(-1, 1, size=s) * k).astype(np.float32) for s, k in zip(SHAPES, SCALES)]
             for _ in range(STEPS)]
    save(F, "common", w0=flat(w0), g=np.stack([flat(g) for g in grads]),
         sizes=np.array([int(np.prod(s)) for s in SHAPES], np.int64))

    for case, make in CASES.items():
        opt = make()
        vs = [keras.Variable(w, name=f"v{i}") for i, w in enumerate(w0)]
        ws, lrs = [], []
        for g in grads:
            lrs.append(float(opt.learning_rate))
            opt.apply_gradients(zip(g, vs))
            ws.append(flat([v.numpy() for v in vs]))
        # Slot variables are named "v<i>_<slot>"; group them by slot in
        # creation order.
        slots = {}
        for v in opt.variables:
            if v.name.startswith("v") and "_" in v.name:
                slots.setdefault(v.name.split("_", 1)[1], []).append(v.numpy())
        save(F, case, w=np.stack(ws), lr=np.array(lrs, np.float32),
             **{name: flat(vals) for name, vals in slots.items()})
    print(f"{len(CASES)} cases written ({versions()})")


if __name__ == "__main__":
    main()
