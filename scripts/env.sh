# Sourced by the scripts: where the data sets are (LAMINA_DATA), defaulting to
# ../shared/data beside the repository.
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [ -z "${LAMINA_DATA:-}" ]; then
  for d in "$here/../shared/data" "$here/../../shared/data" /work/shared/data; do
    if [ -d "$d/mnist" ]; then LAMINA_DATA="$(cd "$d" && pwd)"; break; fi
  done
fi
export LAMINA_DATA="${LAMINA_DATA:-$here/../shared/data}"
