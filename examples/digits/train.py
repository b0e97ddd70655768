#!/usr/bin/python3
"""Trains the digits example's CNN and writes everything the pipelines read.

Data: scikit-learn's 8x8 handwritten digits (load_digits: 1797 images,
pixels 0..16, shipped with the library, nothing downloaded), scaled to
0..1. Split: sklearn's train_test_split with test_size=0.2, stratified,
random_state=0 -> 1437 training and 360 test images.

Net (input [1, 8, 8]):
    conv1 3x3 1->8 pad 1, bn1, relu1, pool1 max 2     -> [8, 4, 4]
    conv2 3x3 8->16 pad 1, bn2, relu2, pool2 max 2    -> [16, 2, 2]
    flatten, fc 64->10                                -> logits [10]

Outputs (committed; CI never trains):
    weights/<key>.npy   the state_dict, one numpy.save per entry (the npy
                        frontend's layout, as tools/export_state_dict.py)
    test_x.npy          float32 [360, 1, 8, 8]   held-out images
    test_y.npy          int64 [360]              their labels
    calib.npy           float32 [200, 1, 8, 8]   the first 200 training
                                                  images (calibration)
It prints the float test accuracy of the trained net (torch, eval mode).

Deterministic on CPU: fixed seeds, one thread, deterministic algorithms.
Run with Debian's interpreter, which sees python3-torch and python3-sklearn:
    /usr/bin/python3 examples/digits/train.py
"""

import os
import sys

import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn

HERE = os.path.dirname(os.path.abspath(__file__))
EPOCHS = 30
BATCH = 32
CALIB = 200


def make_net():
    return nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3, padding=1),
        nn.BatchNorm2d(16),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(64, 10),
    )


# The state_dict keys of make_net() renamed after the pipeline's layers.
NAMES = {"0": "conv1", "1": "bn1", "4": "conv2", "5": "bn2", "9": "fc"}


def main():
    torch.manual_seed(0)
    np.random.seed(0)
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)

    d = load_digits()
    x = (d.data.astype(np.float32) / 16.0).reshape(-1, 1, 8, 8)
    y = d.target.astype(np.int64)
    x_tr, x_te, y_tr, y_te = train_test_split(
        x, y, test_size=0.2, stratify=y, random_state=0)

    net = make_net()
    opt = torch.optim.Adam(net.parameters(), lr=0.01)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=10, gamma=0.3)
    xt, yt = torch.from_numpy(x_tr), torch.from_numpy(y_tr)
    g = torch.Generator().manual_seed(0)
    for _ in range(EPOCHS):
        net.train()
        perm = torch.randperm(len(xt), generator=g)
        for i in range(0, len(xt), BATCH):
            idx = perm[i:i + BATCH]
            opt.zero_grad()
            loss = nn.functional.cross_entropy(net(xt[idx]), yt[idx])
            loss.backward()
            opt.step()
        sched.step()

    net.eval()
    with torch.no_grad():
        pred = net(torch.from_numpy(x_te)).argmax(1).numpy()
    acc = (pred == y_te).mean()

    wdir = os.path.join(HERE, "weights")
    os.makedirs(wdir, exist_ok=True)
    for f in os.listdir(wdir):
        if f.endswith(".npy"):
            os.remove(os.path.join(wdir, f))
    for key, v in net.state_dict().items():
        mod, field = key.split(".", 1)
        if field == "num_batches_tracked":
            continue
        np.save(os.path.join(wdir, f"{NAMES[mod]}.{field}.npy"),
                v.detach().numpy().astype(np.float32))
    np.save(os.path.join(HERE, "test_x.npy"), x_te.astype(np.float32))
    np.save(os.path.join(HERE, "test_y.npy"), y_te)
    np.save(os.path.join(HERE, "calib.npy"), x_tr[:CALIB].astype(np.float32))
    print(f"train {len(x_tr)}, test {len(x_te)}, calib {CALIB}; "
          f"float test accuracy {100 * acc:.2f}% "
          f"({int((pred == y_te).sum())}/{len(y_te)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
