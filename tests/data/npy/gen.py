"""Writes the small .npy files read by tests/test_npy.c (run from anywhere):
    /opt/kvenv/bin/python tests/data/npy/gen.py
Values follow simple formulas that the test recomputes."""
import os

import numpy as np

out = os.path.dirname(os.path.abspath(__file__))


def save(name, arr, **kw):
    np.save(os.path.join(out, name + ".npy"), arr, **kw)


def write_version(name, arr, version):
    with open(os.path.join(out, name + ".npy"), "wb") as f:
        np.lib.format.write_array(f, arr, version=version)


# Readable: values i*0.5 - 1 (floats), i - 3 (signed), i * 37 % 256 (u1) ...
save("f4", (np.arange(6, dtype=np.float32) * 0.5 - 1).reshape(2, 3))
save("f8", np.arange(5, dtype=np.float64) / 3)
save("i4", np.arange(7, dtype=np.int32).reshape(7, 1) - 3)
save("i8", (np.arange(4, dtype=np.int64) - 2) * (1 << 40))
save("u1", (np.arange(10) * 37 % 256).astype(np.uint8))
save("i1", np.array([-128, -1, 0, 1, 127], dtype=np.int8))
save("i2", np.array([-32768, -2, 0, 3, 32767], dtype=np.int16))
save("u2", np.array([0, 1, 40000, 65535], dtype=np.uint16))
save("u4", np.array([0, 7, 3000000000, 4294967295], dtype=np.uint32))
save("b1", np.array([[True, False, True], [False, False, True]]))
save("scalar", np.float32(3.5))
save("empty", np.zeros((0, 3), np.float32))
save("dims4", np.arange(6, dtype=np.float32).reshape(1, 2, 1, 3))
write_version("v2", np.arange(3, dtype=np.float32), (2, 0))
write_version("v3", np.arange(3, dtype=np.int64), (3, 0))
# Refused.
save("fortran", np.asfortranarray(np.arange(6, dtype=np.float32).reshape(2, 3)))
save("bigendian", np.arange(3, dtype=">f4"))
save("object", np.array([1, "a", None], dtype=object), allow_pickle=True)
save("unicode", np.array(["ab", "c"]))
save("structured", np.zeros(2, dtype=[("a", "<f4"), ("b", "<i4")]))
save("complex", np.zeros(2, np.complex64))
save("f2", np.zeros(2, np.float16))
