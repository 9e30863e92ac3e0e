#!/usr/bin/env bash
# Builds Lamina and runs the whole test suite (ctest prints the summary line).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
source scripts/env.sh
build="${LAMINA_BUILD_DIR:-build}"
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DLAMINA_WERROR=ON >/dev/null
cmake --build "$build"
cd "$build" && ctest --output-on-failure -j2 "$@"
