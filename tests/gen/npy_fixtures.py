#!/usr/bin/python3
"""Writes the .npy fixtures of tests/unit/test_npy.c into tests/data/npy/.

Run with Debian's /usr/bin/python3 (it sees python3-numpy):

    /usr/bin/python3 tests/gen/npy_fixtures.py

The outputs are committed, so `make check` needs no Python. Good files are
written by numpy itself; malformed ones byte by byte, as numpy refuses to
write them. Every file is a few hundred bytes at most.
"""

import os
import struct
import sys

import numpy as np
from numpy.lib import format as npf

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                   "..", "data", "npy")
MAGIC = b"\x93NUMPY"


def path(name):
    return os.path.join(OUT, name)


def save(name, arr, version=None):
    """numpy's own writer; version None lets numpy pick (1.0)."""
    with open(path(name), "wb") as f:
        if version is None:
            np.save(f, arr, allow_pickle=arr.dtype.hasobject)
        else:
            npf.write_array(f, arr, version=version,
                            allow_pickle=arr.dtype.hasobject)


def raw(name, data):
    with open(path(name), "wb") as f:
        f.write(data)


def header(text, major=1):
    """A preamble and header as numpy lays them out: padded with spaces
    and a final newline so the data starts at a multiple of 64."""
    body = text.encode("utf-8")
    pre = 10 if major == 1 else 12
    pad = -(pre + len(body) + 1) % 64
    body += b" " * pad + b"\n"
    lenfmt = "<H" if major == 1 else "<I"
    return MAGIC + bytes([major, 0]) + struct.pack(lenfmt, len(body)) + body


def good():
    f4 = np.float32
    save("f4_2d.npy", (np.arange(8, dtype=f4) * f4(0.5) - 1).reshape(4, 2))
    save("f8_2d.npy", np.array([[0.1, -2.5, 1.0 / 3], [4.0, 1e-3, 1e6]]))

    # float64 -> float32 rounding at the edges: overflow to inf, FLT_MAX,
    # the round-half-even point just past FLT_MAX, underflow to 0.
    flt_max = float(np.finfo(np.float32).max)
    edge = np.array([1e300, -1e300, np.nan, np.inf, flt_max,
                     float.fromhex("0x1.fffffefffffffp127"),
                     float.fromhex("0x1.ffffffp127"), 1e-50])
    with np.errstate(over="ignore"):
        want = edge.astype(np.float32)
    assert np.isinf(want[0]) and want[0] > 0
    assert np.isinf(want[1]) and want[1] < 0
    assert want[4] == want[5] == flt_max and np.isinf(want[6])
    assert want[7] == 0
    save("f8_edge.npy", edge)

    save("f4_v2.npy", np.array([1.5, -2.0, 3.25], dtype=f4), version=(2, 0))
    save("f8_v3.npy", np.array([[1.0, 2.0], [3.0, 4.5]]), version=(3, 0))
    save("f4_0d.npy", np.array(3.5, dtype=f4))
    save("f4_1d.npy", np.array([0.0, 1.0, -1.0, 0.25, 100.0], dtype=f4))
    save("f4_3d.npy", np.arange(12, dtype=f4).reshape(2, 3, 2))
    save("f4_8d.npy", np.array([7.0, 8.0], dtype=f4).reshape((1,) * 7 + (2,)))
    save("f4_rows10.npy", np.arange(30, dtype=f4).reshape(10, 3))
    save("f4_empty.npy", np.zeros((0, 3), dtype=f4))
    save("f4_nocols.npy", np.zeros((3, 0), dtype=f4))
    # The reader passes NaN and Inf through; its callers refuse them.
    save("f4_nan.npy", np.array([np.nan, np.inf, -np.inf], dtype=f4))

    # Integer dtypes, converted as astype(float32) does: to nearest, ties
    # to even (2^24 + 1 -> 2^24, 2^24 + 3 -> 2^24 + 4).
    ints = {
        "i1_1d.npy": np.array([-128, -1, 0, 1, 127], dtype=np.int8),
        "u1_2d.npy": np.array([[0, 1, 127], [128, 254, 255]],
                              dtype=np.uint8),
        "i4_1d.npy": np.array([-2**31, -1, 0, 2**24 + 1, 2**31 - 1],
                              dtype="<i4"),
        "i8_1d.npy": np.array([-2**63, -(2**53 + 1), 0, 2**24 + 3,
                               2**63 - 1], dtype="<i8"),
    }
    want = {
        "i1_1d.npy": [-128, -1, 0, 1, 127],
        "u1_2d.npy": [0, 1, 127, 128, 254, 255],
        "i4_1d.npy": [-2.0**31, -1, 0, 2.0**24, 2.0**31],
        "i8_1d.npy": [-2.0**63, -2.0**53, 0, 2.0**24 + 4, 2.0**63],
    }
    for name, arr in ints.items():
        assert list(arr.astype(f4).ravel()) == [f4(v) for v in want[name]]
        save(name, arr)

    # Fortran order: every file holds arange in C order once transposed.
    save("f4_fortran_2d.npy",
         np.asfortranarray(np.arange(12, dtype=f4).reshape(3, 4)))
    save("f8_fortran_3d.npy",
         np.asfortranarray(np.arange(24, dtype=np.float64).reshape(2, 3, 4)),
         version=(2, 0))
    save("i1_fortran_3d.npy",
         np.asfortranarray(np.arange(-12, 12, dtype=np.int8)
                           .reshape(4, 3, 2)), version=(3, 0))
    save("f4_fortran_rows10.npy",
         np.asfortranarray(np.arange(30, dtype=f4).reshape(10, 3)))
    for name in ("f4_fortran_2d.npy", "f8_fortran_3d.npy",
                 "i1_fortran_3d.npy", "f4_fortran_rows10.npy"):
        with open(path(name), "rb") as f:
            npf.read_magic(f)
            hdr = f.read(400)
        assert b"'fortran_order': True" in hdr, name


def bad():
    f4 = np.float32
    raw("bad_magic.npy", b"hello, this is not numpy\n")
    raw("bad_empty.npy", b"")
    raw("bad_npz.npy", b"PK\x03\x04" + bytes(12))
    raw("bad_version.npy",
        MAGIC + b"\x04\x00" + header(
            "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }")[8:]
        + bytes(4))
    raw("bad_trunc_preamble.npy", MAGIC + b"\x01\x00\x76")
    raw("bad_trunc_header.npy", header(
        "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }")[:30])
    raw("bad_missing_key.npy", header(
        "{'descr': '<f4', 'fortran_order': False, }"))
    # 3 * 2^32 dims: 2^96 elements.
    raw("bad_overflow.npy", header(
        "{'descr': '<f4', 'fortran_order': False, "
        "'shape': (4294967296, 4294967296, 4294967296), }") + bytes(8))
    # Fits in 64 bits, but the file is 8 bytes of data, not 4 TB.
    raw("bad_absurd.npy", header(
        "{'descr': '<f4', 'fortran_order': False, "
        "'shape': (1000000000000,), }") + bytes(8))

    save("bad_bigendian.npy", np.arange(3, dtype=">f4"))
    save("bad_bigendian_i8.npy", np.arange(3, dtype=">i8"))
    save("bad_object.npy", np.array([None, 1], dtype=object))
    save("bad_f2.npy", np.arange(3, dtype=np.float16))
    save("bad_bool.npy", np.array([True, False]))
    save("bad_u4.npy", np.arange(3, dtype="<u4"))
    # Fortran order, 20 of its 24 data bytes.
    save("bad_fortran_trunc.npy",
         np.asfortranarray(np.arange(6, dtype=f4).reshape(2, 3)))
    with open(path("bad_fortran_trunc.npy"), "rb+") as f:
        f.truncate(os.path.getsize(path("bad_fortran_trunc.npy")) - 4)
    save("bad_structured.npy",
         np.zeros(2, dtype=[("a", "<f4"), ("b", "<f4")]))
    save("bad_ndim9.npy", np.zeros((1,) * 9, dtype=f4))

    # A (4, 2) float32 array with 20 of its 32 data bytes.
    save("bad_trunc_data.npy", np.arange(8, dtype=f4).reshape(4, 2))
    with open(path("bad_trunc_data.npy"), "rb+") as f:
        f.truncate(os.path.getsize(path("bad_trunc_data.npy")) - 12)


def main():
    os.makedirs(OUT, exist_ok=True)
    # Fixtures of earlier versions that are no longer written.
    for old in ("bad_int8.npy", "bad_fortran.npy"):
        if os.path.exists(path(old)):
            os.remove(path(old))
    good()
    bad()
    return 0


if __name__ == "__main__":
    sys.exit(main())
