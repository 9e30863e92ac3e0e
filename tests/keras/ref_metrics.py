"""Keras references for the compiled metrics (running means over batches).

For each case a keras.metrics object sees 2-3 fixed batches (update_state on
each, result() after each). Writes tests/data/keras/metrics/<case>.{p0,t0,w0,
p1,...,r}.npy: predictions p<b>, labels t<b>, optional sample weights w<b>
and the results r after every batch. "accuracy" resolution (compile_utils.
get_metric) is dumped as resolve.{shapes,kind}.npy: kind 0 binary, 1 sparse
categorical, 2 categorical. Run from the repository root:
    KERAS_BACKEND=jax /opt/kvenv/bin/python tests/keras/ref_metrics.py
"""
import os

os.environ.setdefault("KERAS_BACKEND", "jax")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from keras.src.trainers import compile_utils  # noqa: E402

from refutil import rng, save, versions  # noqa: E402

FAMILY = "metrics"
M = keras.metrics


def case(name, metric, batches):
    arrays = {}
    results = []
    for b, (p, t, w) in enumerate(batches):
        arrays[f"p{b}"] = p
        arrays[f"t{b}"] = t
        if w is not None:
            arrays[f"w{b}"] = w
        metric.update_state(t, p, sample_weight=w)
        results.append(float(metric.result()))
    arrays["r"] = np.asarray(results, dtype=np.float32)
    save(FAMILY, name, **arrays)


def u(seed, shape, lo=0.0, hi=1.0):
    return rng(seed).uniform(lo, hi, size=shape).astype(np.float32)


def coarse(seed, shape, levels=4):
    """Scores on a coarse grid, so rows have ties (argmax / top-k tie rules)."""
    return (rng(seed).integers(0, levels, size=shape) / levels).astype(np.float32)


def labels(seed, shape, classes, dtype=np.int32):
    return rng(seed).integers(0, classes, size=shape).astype(dtype)


def onehot(seed, n, classes):
    return np.eye(classes, dtype=np.float32)[labels(seed, (n,), classes)]


def binary(seed, shape):
    return rng(seed).integers(0, 2, size=shape).astype(np.float32)


def main():
    # binary accuracy: (N, 1), multi-label (N, 3), labels (N,) against (N, 1), thresholds
    case("binary_accuracy", M.BinaryAccuracy(),
         [(u(1, (6, 1)), binary(2, (6, 1)), None), (u(3, (5, 1)), binary(4, (5, 1)), None)])
    case("binary_accuracy_multilabel", M.BinaryAccuracy(),
         [(coarse(5, (4, 3)), binary(6, (4, 3)), None), (u(7, (3, 3)), binary(8, (3, 3)), None)])
    case("binary_accuracy_rank1_labels", M.BinaryAccuracy(threshold=0.3),
         [(u(9, (7, 1)), binary(10, (7,)), None), (u(11, (4, 1)), binary(12, (4,)), None)])
    case("binary_accuracy_weighted", M.BinaryAccuracy(threshold=0.7),
         [(u(13, (5, 2)), binary(14, (5, 2)), u(15, (5,))),
          (u(16, (4, 2)), binary(17, (4, 2)), u(18, (4,)))])

    # categorical accuracy: one-hot labels, ties in the scores (first maximum wins)
    case("categorical_accuracy", M.CategoricalAccuracy(),
         [(coarse(20, (6, 5)), onehot(21, 6, 5), None), (u(22, (4, 5)), onehot(23, 4, 5), None),
          (coarse(24, (5, 5), 3), onehot(25, 5, 5), None)])
    case("categorical_accuracy_weighted", M.CategoricalAccuracy(),
         [(u(26, (5, 4)), onehot(27, 5, 4), u(28, (5,))),
          (u(29, (3, 4)), onehot(30, 3, 4), np.zeros(3, np.float32))])

    # sparse categorical accuracy: int labels (N,), (N, 1), float labels, sequences
    case("sparse_categorical_accuracy", M.SparseCategoricalAccuracy(),
         [(coarse(40, (6, 4)), labels(41, (6,), 4), None), (u(42, (5, 4)), labels(43, (5,), 4), None)])
    case("sparse_categorical_accuracy_n1", M.SparseCategoricalAccuracy(),
         [(u(44, (5, 3)), labels(45, (5, 1), 3), None), (u(46, (4, 3)), labels(47, (4, 1), 3), None)])
    case("sparse_categorical_accuracy_float", M.SparseCategoricalAccuracy(),
         [(u(48, (6, 5)), labels(49, (6,), 5, np.float32), None),
          (u(50, (2, 5)), labels(51, (2,), 5, np.float32), None)])
    case("sparse_categorical_accuracy_seq", M.SparseCategoricalAccuracy(),
         [(u(52, (3, 4, 6)), labels(53, (3, 4), 6), u(54, (3,))),
          (u(55, (2, 4, 6)), labels(56, (2, 4), 6), u(57, (2,)))])

    # top-k: default k=5 on 8 classes, k=2 with ties (ties count for the target)
    case("top_k_categorical_accuracy", M.TopKCategoricalAccuracy(),
         [(u(60, (6, 8)), onehot(61, 6, 8), None), (u(62, (4, 8)), onehot(63, 4, 8), None)])
    case("top_k_categorical_accuracy_k2", M.TopKCategoricalAccuracy(k=2),
         [(coarse(64, (8, 5)), onehot(65, 8, 5), None), (coarse(66, (6, 5), 3), onehot(67, 6, 5), u(68, (6,)))])
    case("sparse_top_k_categorical_accuracy", M.SparseTopKCategoricalAccuracy(),
         [(u(70, (6, 8)), labels(71, (6,), 8), None), (u(72, (5, 8)), labels(73, (5,), 8), None)])
    case("sparse_top_k_categorical_accuracy_k2", M.SparseTopKCategoricalAccuracy(k=2),
         [(coarse(74, (8, 5)), labels(75, (8,), 5), None),
          (coarse(76, (6, 5), 3), labels(77, (6, 1), 5), u(78, (6,)))])

    # regression metrics
    case("mae", M.MeanAbsoluteError(),
         [(u(80, (5, 3), -2, 2), u(81, (5, 3), -2, 2), None), (u(82, (4, 3), -2, 2), u(83, (4, 3), -2, 2), None)])
    case("mae_weighted", M.MeanAbsoluteError(),
         [(u(84, (5, 2, 3), -1, 1), u(85, (5, 2, 3), -1, 1), u(86, (5,))),
          (u(87, (3, 2, 3), -1, 1), u(88, (3, 2, 3), -1, 1), u(89, (3,)))])
    case("mse", M.MeanSquaredError(),
         [(u(90, (5, 3), -2, 2), u(91, (5, 3), -2, 2), None), (u(92, (4, 3), -2, 2), u(93, (4, 3), -2, 2), None),
          (u(94, (2, 3), -2, 2), u(95, (2, 3), -2, 2), None)])
    case("mse_broadcast_label", M.MeanSquaredError(),
         [(u(96, (4, 3), -2, 2), u(97, (4, 1), -2, 2), u(98, (4,))),
          (u(99, (3, 3), -2, 2), u(100, (3, 1), -2, 2), None)])

    # precision / recall (thresholds: y_pred > t)
    case("precision", M.Precision(),
         [(coarse(110, (8, 1)), binary(111, (8, 1)), None), (u(112, (6, 1)), binary(113, (6, 1)), None)])
    case("precision_multilabel_weighted", M.Precision(thresholds=0.3),
         [(u(114, (5, 3)), binary(115, (5, 3)), u(116, (5,))), (u(117, (4, 3)), binary(118, (4, 3)), u(119, (4,)))])
    case("recall", M.Recall(),
         [(coarse(120, (8, 1)), binary(121, (8, 1)), None), (u(122, (6, 1)), binary(123, (6, 1)), None)])
    case("recall_multilabel_weighted", M.Recall(thresholds=0.6),
         [(u(124, (5, 3)), binary(125, (5, 3)), u(126, (5,))), (u(127, (4, 3)), binary(128, (4, 3)), u(129, (4,)))])
    case("precision_empty", M.Precision(),
         [(np.zeros((3, 1), np.float32), binary(130, (3, 1)), None)])

    # "accuracy" resolution from the shapes of y_true and y_pred
    shapes = [((8, 1), (8, 1)), ((8,), (8, 1)), ((8,), (8, 5)), ((8, 1), (8, 5)), ((8, 5), (8, 5)),
              ((8, 3), (8, 3)), ((8, 4), (8, 4, 6)), ((8, 4, 1), (8, 4, 1)), ((8, 4, 6), (8, 4, 6))]
    kinds, rows = [], []
    for ts, ps in shapes:
        m = compile_utils.get_metric("accuracy", np.zeros(ts, np.float32), np.zeros(ps, np.float32))
        kinds.append({"BinaryAccuracy": 0, "SparseCategoricalAccuracy": 1,
                      "CategoricalAccuracy": 2}[type(m).__name__])
        row = np.zeros(8, np.int32)  # true ndim, 3 true dims, pred ndim, 3 pred dims
        row[0], row[4] = len(ts), len(ps)
        row[1:1 + len(ts)], row[5:5 + len(ps)] = ts, ps
        rows.append(row)
    save(FAMILY, "resolve", shapes=np.stack(rows), kind=np.asarray(kinds, np.int32))
    print("wrote tests/data/keras/metrics with", versions())


if __name__ == "__main__":
    main()
