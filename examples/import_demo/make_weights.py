#!/usr/bin/python3
"""The importer's exemplar as a tmpipe example: a 3-8-4-2 MLP (ReLU, ReLU,
sigmoid) with deterministic seeded weights and an engineered imbalance
(fc1 row 0 x0.05, row 1 x6; fc2 column 0 x6, column 1 x0.05), 16
held-out samples of U(-1, 1)^3 for the parity check and 64 calibration
samples of U(-1, 1)^3 (draw 0 of calib_draw.py). Saved as a PyTorch state_dict would be (Linear weight [out, in]).

Run with Debian's python3 (/usr/bin/python3 sees python3-numpy); the
outputs are committed.
"""
import os
import sys

import numpy as np

here = os.path.dirname(os.path.abspath(__file__))
w = os.path.join(here, "weights")
os.makedirs(w, exist_ok=True)
rng = np.random.default_rng(20261127)

fc1_w = rng.uniform(-1, 1, (8, 3)).astype(np.float32)
fc1_b = rng.uniform(-0.1, 0.1, 8).astype(np.float32)
fc2_w = rng.uniform(-1, 1, (4, 8)).astype(np.float32)
fc2_b = rng.uniform(-0.1, 0.1, 4).astype(np.float32)
fc3_w = rng.uniform(-1, 1, (2, 4)).astype(np.float32)
fc3_b = rng.uniform(-0.1, 0.1, 2).astype(np.float32)

# The imbalance CLE is meant for: one channel tiny, one large, the
# following layer compensating.
fc1_w[0] *= 0.05
fc1_b[0] *= 0.05
fc1_w[1] *= 6.0
fc1_b[1] *= 6.0
fc2_w[:, 0] *= 6.0
fc2_w[:, 1] *= 0.05

for name, value in {
    "fc1.weight": fc1_w, "fc1.bias": fc1_b,
    "fc2.weight": fc2_w, "fc2.bias": fc2_b,
    "fc3.weight": fc3_w, "fc3.bias": fc3_b,
}.items():
    np.save(os.path.join(w, name + ".npy"), value)

np.save(os.path.join(here, "holdout.npy"),
        rng.uniform(-1, 1, (16, 3)).astype(np.float32))

# The calibration set is draw 0 of a family of 64-sample draws, each from
# its own seed, so that sweep.sh can measure how much the result depends
# on which 64 samples calibrate (calib_draw.py K writes draw K).
sys.path.insert(0, here)
from calib_draw import draw  # noqa: E402

np.save(os.path.join(here, "calib.npy"), draw(0))
