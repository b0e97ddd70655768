#!/usr/bin/python3
"""Writes tests/data/onnx/cnn.onnx: a small CNN exported from PyTorch
(Conv-BN-ReLU blocks, max pooling, a residual Add, global average pooling,
a dense head), with BatchNorm kept as nodes (training=PRESERVE,
do_constant_folding=False), and its reference data:

  cnn_input.npy   8 samples [8, 3, 8, 8]
  cnn_output.npy  PyTorch's outputs for them [8, 4] (eval mode)
  cnn_calib.npy   32 calibration samples
  cnn_holdout.npy 16 held-out samples

and view.onnx (view_input.npy, view_output.npy): x.view(x.size(0), -1)
with a dynamic batch, which exports as Shape, Gather, Unsqueeze, Concat
and Reshape.

Run with /usr/bin/python3 (Debian's torch); the outputs are committed."""
import os

import numpy as np
import torch
import torch.nn as nn

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data",
                   "onnx")


class Block(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU()

    def forward(self, x):
        return self.relu(self.bn(self.conv(x)))


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.b1 = Block(3, 8)
        self.pool = nn.MaxPool2d(2)
        self.b2 = Block(8, 8)
        self.b3 = Block(8, 8)
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(8, 4)

    def forward(self, x):
        x = self.pool(self.b1(x))
        x = x + self.b3(self.b2(x))      # residual Add
        x = torch.flatten(self.gap(x), 1)
        return self.fc(x)


class ViewNet(nn.Module):
    """x.view(x.size(0), -1) exports (dynamic batch) as Shape, Gather,
    Unsqueeze and Concat feeding a Reshape."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.fc = nn.Linear(4 * 6 * 6, 2)

    def forward(self, x):
        x = torch.relu(self.conv(x))
        return self.fc(x.view(x.size(0), -1))


def export_view(rng):
    net = ViewNet().eval()
    x = torch.tensor(rng.standard_normal((3, 3, 8, 8)), dtype=torch.float32)
    torch.onnx.export(net, x[:1], os.path.join(OUT, "view.onnx"),
                      input_names=["x"], output_names=["y"],
                      dynamic_axes={"x": {0: "N"}, "y": {0: "N"}},
                      opset_version=13, do_constant_folding=False)
    with torch.no_grad():
        y = net(x)
    np.save(os.path.join(OUT, "view_input.npy"), x.numpy())
    np.save(os.path.join(OUT, "view_output.npy"), y.numpy())


def main():
    torch.manual_seed(7)
    rng = np.random.default_rng(7)
    net = Net()
    # Give BatchNorm statistics that are not the identity.
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                c = m.num_features
                m.weight.copy_(torch.tensor(rng.uniform(0.5, 1.5, c)))
                m.bias.copy_(torch.tensor(rng.uniform(-0.2, 0.2, c)))
                m.running_mean.copy_(torch.tensor(rng.uniform(-0.3, 0.3, c)))
                m.running_var.copy_(torch.tensor(rng.uniform(0.5, 2.0, c)))
    net.eval()
    os.makedirs(OUT, exist_ok=True)
    x = torch.tensor(rng.standard_normal((8, 3, 8, 8)), dtype=torch.float32)
    torch.onnx.export(net, x[:1], os.path.join(OUT, "cnn.onnx"),
                      input_names=["input"], output_names=["logits"],
                      dynamic_axes={"input": {0: "N"}, "logits": {0: "N"}},
                      opset_version=13,
                      training=torch.onnx.TrainingMode.PRESERVE,
                      do_constant_folding=False)
    with torch.no_grad():
        y = net(x)
    np.save(os.path.join(OUT, "cnn_input.npy"), x.numpy())
    np.save(os.path.join(OUT, "cnn_output.npy"), y.numpy().astype(np.float32))
    np.save(os.path.join(OUT, "cnn_calib.npy"),
            rng.standard_normal((32, 3, 8, 8)).astype(np.float32))
    np.save(os.path.join(OUT, "cnn_holdout.npy"),
            rng.standard_normal((16, 3, 8, 8)).astype(np.float32))
    export_view(rng)


if __name__ == "__main__":
    main()
