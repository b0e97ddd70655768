#!/usr/bin/python3
"""Writes the textbook XOR network of QUANT.md as a PyTorch state_dict
would be saved: one .npy per tensor, Linear weights [out, in].

    fc1: weight all ones (4x2), bias [0, -1, 0, -1]; ReLU
    fc2: weight [2, -4, 2, -4], bias [-2]; sigmoid

and the calibration set: the four XOR inputs. Run with Debian's python3
(/usr/bin/python3 sees python3-numpy). The outputs are committed, so
building and testing tmpipe needs no Python.
"""
import os

import numpy as np

here = os.path.dirname(os.path.abspath(__file__))
w = os.path.join(here, "weights")
os.makedirs(w, exist_ok=True)

state = {
    "fc1.weight": np.ones((4, 2), dtype=np.float32),
    "fc1.bias": np.array([0, -1, 0, -1], dtype=np.float32),
    "fc2.weight": np.array([[2, -4, 2, -4]], dtype=np.float32),
    "fc2.bias": np.array([-2], dtype=np.float32),
}
for name, value in state.items():
    np.save(os.path.join(w, name + ".npy"), value)

calib = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32)
np.save(os.path.join(here, "calib.npy"), calib)
