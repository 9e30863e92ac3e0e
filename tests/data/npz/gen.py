"""Writes the small .npz files read by tests/test_npz.c (run from anywhere):
    /opt/kvenv/bin/python tests/data/npz/gen.py
Good archives come from numpy itself; bad ones are crafted with zipfile and
byte patches. Values follow simple formulas that the test recomputes."""
import io
import os
import struct
import zipfile

import numpy as np

out = os.path.dirname(os.path.abspath(__file__))


def path(name):
    return os.path.join(out, name + ".npz")


def arrays():
    return dict(
        x=(np.arange(12, dtype=np.float32) * 0.25 - 1).reshape(3, 4),
        y=np.array([2, 0, 1], dtype=np.int64),
        s=np.float64(1.5),
        u=(np.arange(10) * 37 % 256).astype(np.uint8).reshape(2, 5),
    )


# numpy's own writers: stored (savez) and deflated (savez_compressed).
np.savez(path("plain"), **arrays())
np.savez_compressed(path("compressed"), **arrays())
# Positional arrays are named arr_0, arr_1.
np.savez(path("positional"), np.ones((2, 2), np.float32), np.zeros(3, np.int32))
np.savez(path("empty"))
# keras.datasets.mnist's layout, tiny.
np.savez_compressed(
    path("mnist_like"),
    x_train=np.arange(4 * 3 * 3, dtype=np.uint8).reshape(4, 3, 3),
    y_train=np.array([0, 1, 2, 1], np.uint8),
    x_test=np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3),
    y_test=np.array([2, 0], np.uint8),
)


def npy_bytes(a):
    b = io.BytesIO()
    np.save(b, a)
    return b.getvalue()


def craft(name, members, method=zipfile.ZIP_STORED):
    with zipfile.ZipFile(path(name), "w", method) as z:
        for n, data in members:
            z.writestr(n, data)


small = npy_bytes(np.arange(4, dtype=np.float32))
craft("bad_nested", [("dir/x.npy", small)])
craft("bad_dotdot", [("..x.npy", small)])
craft("bad_absolute", [("/x.npy", small)])
craft("bad_notnpy", [("x.txt", small)])
craft("bad_noname", [(".npy", small)])
craft("bad_npy", [("x.npy", b"this is not an npy file")])
craft("bad_bzip2", [("x.npy", small)], zipfile.ZIP_BZIP2)
with open(path("plain"), "rb") as f:
    plain = f.read()
# Cut in the middle: no central directory.
with open(path("bad_truncated"), "wb") as f:
    f.write(plain[: len(plain) // 2])
with open(path("bad_garbage"), "wb") as f:
    f.write(b"PK\x03\x04" + b"\x00" * 60)
import warnings  # noqa: E402

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # zipfile warns about the duplicate, as intended
    craft("bad_duplicate", [("x.npy", small), ("x.npy", small)])


def patch_sizes(name, src_bytes, size=None, csize=None, flip_last_data_byte=False):
    """Rewrites the sizes of the only member in both the local header and the
    central directory (so libzip's consistency check agrees with them)."""
    b = bytearray(src_bytes)
    lh = b.find(b"PK\x03\x04")
    cd = b.find(b"PK\x01\x02")
    if csize is not None:
        struct.pack_into("<I", b, lh + 18, csize)
        struct.pack_into("<I", b, cd + 20, csize)
    if size is not None:
        struct.pack_into("<I", b, lh + 22, size)
        struct.pack_into("<I", b, cd + 24, size)
    if flip_last_data_byte:
        b[cd - 1] ^= 0x55
    with open(path(name), "wb") as f:
        f.write(bytes(b))


def one_member(data, method):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", method) as z:
        z.writestr("x.npy", data)
    return buf.getvalue()


big = npy_bytes(np.zeros(256, np.float32))  # compresses well
deflated = one_member(big, zipfile.ZIP_DEFLATED)
stored = one_member(small, zipfile.ZIP_STORED)
# A deflated member claiming 2 GB: more than its compressed bytes can hold.
patch_sizes("bad_bomb", deflated, size=0x7FFFFFF0)
# A deflated member claiming fewer bytes than it inflates to.
patch_sizes("bad_short", deflated, size=len(big) - 100)
# A deflated member claiming more bytes than it inflates to (within the ratio).
patch_sizes("bad_long", deflated, size=len(big) + 100)
# A stored member whose data no longer matches its CRC.
patch_sizes("bad_crc", stored, flip_last_data_byte=True)
# A stored member whose sizes disagree.
patch_sizes("bad_stored_size", stored, size=len(small) + 8)
# A compressed size larger than the whole archive.
patch_sizes("bad_csize", stored, csize=1 << 30, size=1 << 30)
