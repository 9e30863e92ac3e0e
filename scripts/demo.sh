#!/usr/bin/env bash
# Installs what is missing, builds Lamina, and trains the main demo on MNIST:
# the Keras-style CNN (mnist_cnn) for 3 epochs, with its summary and progress bar.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
source scripts/env.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build
./build/examples/mnist_cnn --epochs 3 "$@"
