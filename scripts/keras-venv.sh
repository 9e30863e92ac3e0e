#!/usr/bin/env bash
# Creates (or reuses) a virtual environment outside the repository with Keras 3,
# JAX, h5py and NumPy from PyPI, for the Keras interop tests, and prints the
# path of its python. Prints nothing (and succeeds) when it cannot be made.
set -uo pipefail
venv="${LAMINA_KERAS_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/lamina/keras-venv}"
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "import keras, jax, h5py" >/dev/null 2>&1; then
  mkdir -p "$(dirname "$venv")"
  python3 -m venv "$venv" >/dev/null 2>&1 || exit 0
  "$venv/bin/pip" install -q --disable-pip-version-check keras "jax[cpu]" h5py numpy >/dev/null 2>&1 || exit 0
fi
KERAS_BACKEND=jax "$venv/bin/python" -c "import keras" >/dev/null 2>&1 && echo "$venv/bin/python"
exit 0
