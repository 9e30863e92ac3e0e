#!/usr/bin/env bash
# Builds Lamina and runs the whole test suite (ctest prints the summary line).
# The Keras interop tests use a Keras venv outside the repository, made by
# scripts/keras-venv.sh (they are skipped when it cannot be made).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
source scripts/env.sh
build="${LAMINA_BUILD_DIR:-build}"
export LAMINA_KERAS_PYTHON="${LAMINA_KERAS_PYTHON:-$(bash scripts/keras-venv.sh)}"
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DLAMINA_WERROR=ON \
  -DLAMINA_KERAS_PYTHON="$LAMINA_KERAS_PYTHON" >/dev/null
cmake --build "$build"
cd "$build" && ctest --output-on-failure -j2 "$@"
