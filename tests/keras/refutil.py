"""Shared helpers for the Keras reference generators (tests/keras/ref_*.py).

Each generator computes outputs (and gradients where useful) with real Keras 3
(JAX backend) for fixed inputs and writes them as .npy files under
tests/data/keras/<family>/<case>.<array>.npy, which the C parity tests read.

Run from the repository root, in a virtual environment outside the repo:
    python3 -m venv /tmp/kvenv && /tmp/kvenv/bin/pip install keras jax[cpu] h5py numpy
    KERAS_BACKEND=jax /tmp/kvenv/bin/python tests/keras/ref_<family>.py
"""
import os

os.environ.setdefault("KERAS_BACKEND", "jax")

import numpy as np  # noqa: E402

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "keras")


def rng(seed):
    """A NumPy generator: every case draws its inputs from its own seed."""
    return np.random.default_rng(seed)


def save(family, case, **arrays):
    """Writes each array as float32 (or its integer dtype) in C order."""
    d = os.path.join(ROOT, family)
    os.makedirs(d, exist_ok=True)
    for name, a in arrays.items():
        a = np.asarray(a)
        if a.dtype == np.float64:
            a = a.astype(np.float32)
        np.save(os.path.join(d, f"{case}.{name}.npy"), np.ascontiguousarray(a))


def versions():
    import keras
    import jax
    return f"keras {keras.__version__}, jax {jax.__version__}, numpy {np.__version__}"
