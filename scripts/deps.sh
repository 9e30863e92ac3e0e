#!/usr/bin/env bash
# Installs the Debian 12 packages Lamina builds and tests with, when missing.
set -euo pipefail
pkgs=(build-essential cmake ninja-build pkg-config zlib1g-dev clang libomp-dev libopenblas-dev
      libzip-dev libhdf5-dev libcjson-dev libcurl4-openssl-dev python3 python3-venv)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
