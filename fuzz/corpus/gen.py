"""Writes the seed corpus of every fuzz target (fuzz/corpus/<target>/), run
from anywhere with the python of a Keras venv (h5py and numpy are only
needed for the legacy .h5 config pair):
    /opt/kvenv/bin/python fuzz/corpus/gen.py
Seeds are copies of the test files in tests/data (valid and refused ones),
small files crafted here for the formats that have none there (IDX, CSV),
and, when LAMINA names a built `lamina` command, files written by Lamina.
h5_weights/lamina_mlp.weights.h5 is Lamina's lm_save_weights of the target's
mlp (lm_fuzz_mlp in fuzz/fuzz_util.h) after one epoch of lm_fit."""
import gzip
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import zipfile

here = os.path.dirname(os.path.abspath(__file__))
root = os.path.normpath(os.path.join(here, "..", ".."))
data = os.path.join(root, "tests", "data")


def out(target, name, content):
    d = os.path.join(here, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(content if isinstance(content, bytes) else content.encode())


def copy(target, src, name=None):
    with open(os.path.join(data, src), "rb") as f:
        out(target, name or os.path.basename(src), f.read())


# ---- IDX: magic (0, 0, type, ndim), big-endian int32 dims, big-endian data
def idx(code, fmt, dims, values):
    head = bytes([0, 0, code, len(dims)]) + struct.pack(">%dI" % len(dims), *dims)
    return head + struct.pack(">%d%s" % (len(values), fmt), *values)


n = 2 * 4 * 4
out("idx", "labels.idx1", idx(0x08, "B", [5], [7, 2, 1, 0, 4]))
images = idx(0x08, "B", [2, 4, 4], [(i * 37) % 256 for i in range(n)])
out("idx", "images.idx3", images)
out("idx", "images.idx3.gz", gzip.compress(images, mtime=0))
out("idx", "sbyte.idx2", idx(0x09, "b", [2, 3], [-128, -1, 0, 1, 2, 127]))
out("idx", "int16.idx2", idx(0x0B, "h", [3, 2], [-32768, -2, 0, 3, 300, 32767]))
out("idx", "int32.idx1", idx(0x0C, "i", [4], [-(2**31), -1, 0, 2**31 - 1]))
out("idx", "float32.idx3", idx(0x0D, "f", [1, 2, 2], [0.5, -1.25, 3e38, float("nan")]))
out("idx", "float64.idx1", idx(0x0E, "d", [3], [0.1, -2.5, float("inf")]))
out("idx", "truncated.idx1", idx(0x08, "B", [9], [1, 2, 3]))

# ---- NPY: every dtype family, versions, 0-d, empty, and refused kinds
for f in ["f4", "f8", "i1", "i8", "u2", "b1", "scalar", "empty", "dims4", "v2", "v3",
          "fortran", "bigendian", "structured"]:
    copy("npy", "npy/%s.npy" % f)

# ---- NPZ: stored, deflated, empty, and crafted archives the reader refuses
for f in ["plain", "compressed", "empty", "positional", "bad_bomb", "bad_crc",
          "bad_truncated", "bad_duplicate", "bad_stored_size"]:
    copy("npz", "npz/%s.npz" % f)

# ---- CSV: a data file, quoting rules, separators and line ends
with open(os.path.join(data, "cli", "data.csv"), "rb") as f:
    out("csv", "data.csv", b"".join(f.readlines()[:12]))
out("csv", "airline.csv", '"Month","Passengers"\n"1949-01",112\n"1949-02",118\n"1949-03",132\n')
out("csv", "quoted.csv", '\ufeffa,"b,c",label\r\n" 1.5 ","x ""y""\nz",2\r\n\r\nnan,inf,-3e-2\r\n')
out("csv", "noheader.csv", "1,2,3\n4,5,6\n7,8,9")
out("csv", "semicolon.csv", "f0;label;Passengers\n1;2;3\n-4;5.5;1e3\n")
out("csv", "ragged.csv", "a,b\n1,2\n3\n")

# ---- Keras model configs: Lamina's CLI examples and one of each model kind
for f in ["model.json", "mnist_model.json", "model_nocompile.json"]:
    copy("keras_config", "cli/" + f)
with open(os.path.join(data, "keras", "files", "configs.json")) as f:
    for name, cfg in json.load(f).items():
        out("keras_config", name + ".json", json.dumps(cfg))
for f in ["fn_merge.keras", "resume.keras"]:
    with zipfile.ZipFile(os.path.join(data, "keras", "files", f)) as z:
        out("keras_config", f.replace(".keras", ".config.json"), z.read("config.json"))
try:  # Keras 2's pair [model_config, training_config] from a legacy .h5
    import h5py

    with h5py.File(os.path.join(data, "keras", "weights", "mlp.legacy.h5"), "r") as h:
        attr = lambda k: json.loads(h.attrs[k] if isinstance(h.attrs[k], str) else h.attrs[k].decode())
        pair = [attr("model_config"), attr("training_config")] if "training_config" in h.attrs else None
    if pair:
        out("keras_config", "legacy_pair.json", json.dumps(pair))
except ImportError:
    print("h5py missing: legacy_pair.json not written", file=sys.stderr)

# ---- .keras archives (and legacy .h5 models, which lm_load also reads)
for f in ["keras/files/fn_merge.keras", "keras/files/resume.keras", "cli/unsupported.keras",
          "cli/legacy.h5", "keras/weights/mlp.legacy.h5"]:
    copy("keras_archive", f)

# ---- HDF5 weights: Keras 3 layout and legacy layout of the mlp the target loads into
for f in ["mlp.weights.h5", "mlp.legacy.h5"]:
    copy("h5_weights", "keras/weights/" + f)
with zipfile.ZipFile(os.path.join(data, "keras", "files", "resume.keras")) as z:
    out("h5_weights", "resume.model.weights.h5", z.read("model.weights.h5"))

# ---- written by Lamina (optional): `lamina fit` on the CLI's example model
lamina = os.environ.get("LAMINA")
if lamina:
    with tempfile.TemporaryDirectory() as tmp:
        saved = os.path.join(tmp, "lamina.keras")
        subprocess.run([lamina, "fit", os.path.join(data, "cli", "model.json"), "--data",
                        os.path.join(data, "cli", "data.npz"), "--epochs", "1", "--save", saved],
                       check=True, stdout=subprocess.DEVNULL)
        with open(saved, "rb") as f:
            out("keras_archive", "lamina.keras", f.read())
        with zipfile.ZipFile(saved) as z:
            out("h5_weights", "lamina.model.weights.h5", z.read("model.weights.h5"))
            out("keras_config", "lamina.config.json", z.read("config.json"))
