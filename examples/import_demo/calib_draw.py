#!/usr/bin/python3
"""Draw K of the import_demo's calibration sets: 64 samples of
U(-1, 1)^3 from numpy's default generator seeded CALIB_SEED + K.

    calib_draw.py K OUT.npy

make_weights.py saves draw 0 as calib.npy; sweep.sh calibrates on draws
0..N-1 to show how much the int8 error depends on the draw. Run with
Debian's python3 (/usr/bin/python3 sees python3-numpy).
"""
import sys

import numpy as np

CALIB_SEED = 1000


def draw(k):
    rng = np.random.default_rng(CALIB_SEED + k)
    return rng.uniform(-1, 1, (64, 3)).astype(np.float32)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: calib_draw.py K OUT.npy")
    np.save(sys.argv[2], draw(int(sys.argv[1])))
