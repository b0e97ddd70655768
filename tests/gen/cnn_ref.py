#!/usr/bin/python3
"""Writes the small CNNs of tests/unit/test_cnn.c into tests/data/cnn/.

Run with Debian's /usr/bin/python3 (it sees python3-torch and numpy):

    /usr/bin/python3 tests/gen/cnn_ref.py

The outputs are committed, so `make check` needs no Python.

tests/data/cnn/ — a seeded Conv-BN-ReLU CNN with a residual add, in eval
mode with non-trivial BatchNorm statistics, on non-square inputs [3, 12, 10]:

    conv1 (3->8, 3x3, pad 1) - bn1 - relu1 - pool1 (maxpool 2)
    - conv2 (8->16, 3x3, stride 2, pad 1, no bias) - bn2 (eps 1e-3) - relu2
    - dw (depthwise 3x3, pad 1) - add (dw + relu2) - gap (global avg)
    - flatten - fc (16->10) - softmax

  weights/<key>.npy   its state_dict, written by tools/export_state_dict.py
  pipeline.yaml       frontend npy (state_dict layout: no file names),
                      calibration on calib.npy with minmax, no emit; the
                      layer lines come from the tool's layer_yaml
  calib.npy           16 samples;  inputs.npy: 8 other samples
  ref/<tensor>.npy    PyTorch's output of every layer (and the input) for
                      inputs.npy, float32, one file per tensor
  ref/ranges.txt      "<tensor> <min> <max>" of every tensor over calib.npy:
                      what the minmax observer must find

tests/data/cnn/seq/ — an nn.Sequential whose pipeline.yaml is the tool's
skeleton verbatim (pipeline_yaml), covering the other module types: Conv2d
padding='same' with an even kernel (asymmetric pads), 1x1 conv, ReLU6,
AvgPool2d without counting padding, dilated MaxPool2d, LeakyReLU, Tanh,
Flatten, Linear, Sigmoid, Dropout (skipped), Softmax. Its layers are named
by index ("0", "1", ...): ref/<index>.npy, calibration on inputs.npy.
"""

import os
import sys

import numpy as np
import torch
from torch import nn

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.normpath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(TOP, "tools"))
import export_state_dict as esd  # noqa: E402

OUT = os.path.join(TOP, "tests", "data", "cnn")
SHAPE = (3, 12, 10)
F32 = np.float32


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(8)
        self.relu1 = nn.ReLU()
        self.pool1 = nn.MaxPool2d(2)
        self.conv2 = nn.Conv2d(8, 16, 3, stride=2, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(16, eps=1e-3)
        self.relu2 = nn.ReLU()
        self.dw = nn.Conv2d(16, 16, 3, padding=1, groups=16)
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(16, 10)
        self.softmax = nn.Softmax(dim=1)

    # (layer, module, its inputs) in the order they run.
    def plan(self):
        return [("conv1", self.conv1, "input"), ("bn1", self.bn1, "conv1"),
                ("relu1", self.relu1, "bn1"), ("pool1", self.pool1, "relu1"),
                ("conv2", self.conv2, "pool1"), ("bn2", self.bn2, "conv2"),
                ("relu2", self.relu2, "bn2"), ("dw", self.dw, "relu2"),
                ("add", None, ["dw", "relu2"]), ("gap", self.gap, "add"),
                ("flatten", self.flatten, "gap"), ("fc", self.fc, "flatten"),
                ("softmax", self.softmax, "fc")]

    def forward(self, x):
        """Every tensor by name; the output is the last."""
        t = {"input": x}
        for name, m, src in self.plan():
            if m is None:
                t[name] = t[src[0]] + t[src[1]]
            else:
                t[name] = m(t[src])
        return t


def seq_net():
    return nn.Sequential(
        nn.Conv2d(3, 6, 4, padding="same"),             # pads 1,1,2,2
        nn.BatchNorm2d(6),
        nn.ReLU6(),
        nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False),
        nn.Conv2d(6, 8, 1),                             # [8, 6, 5]
        nn.LeakyReLU(0.2),
        nn.MaxPool2d(2, stride=1, padding=1, dilation=2),
        nn.Tanh(),
        nn.Flatten(),
        nn.Linear(8 * 6 * 5, 12),
        nn.Sigmoid(),
        nn.Dropout(0.5),
        nn.Linear(12, 5),
        nn.Softmax(dim=-1),
    )


def randomize_bn(model, gen):
    """Statistics far from the identity init, so BatchNorm matters."""
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            c = m.num_features
            with torch.no_grad():
                m.weight.copy_(torch.rand(c, generator=gen) + 0.5)
                m.bias.copy_(torch.rand(c, generator=gen) * 0.6 - 0.3)
                m.running_mean.copy_(torch.rand(c, generator=gen) - 0.5)
                m.running_var.copy_(torch.rand(c, generator=gen) * 1.5
                                    + 0.5)


def clean(folder):
    """Old outputs go, so a renamed tensor leaves no stale file."""
    if not os.path.isdir(folder):
        return
    for name in os.listdir(folder):
        if name.endswith((".npy", ".txt")):
            os.remove(os.path.join(folder, name))


def check_f64(run, model, x, outs):
    """The float32 references agree with a float64 run to 1e-6: they are
    a ground truth, not one rounding among others."""
    m64 = run(model.double(), torch.from_numpy(x).double())
    model.float()
    for name, v in outs.items():
        want = m64[name]
        scale = max(1.0, float(np.abs(want).max()))
        err = float(np.abs(v.astype(np.float64) - want).max()) / scale
        assert err < 1e-6, (name, err)


def write_refs(folder, outs):
    os.makedirs(folder, exist_ok=True)
    clean(folder)
    for name, v in outs.items():
        np.save(os.path.join(folder, name + ".npy"),
                np.ascontiguousarray(v, dtype=F32))


def main_cnn(gen, rng):
    torch.manual_seed(0)
    net = Net()
    randomize_bn(net, gen)
    net.eval()

    calib = rng.standard_normal((16,) + SHAPE).astype(F32)
    inputs = rng.standard_normal((8,) + SHAPE).astype(F32)

    def run(model, x):
        with torch.no_grad():
            return {k: v.numpy() for k, v in model(x).items()}

    esd.save_state_dict(net, os.path.join(OUT, "weights"))
    np.save(os.path.join(OUT, "calib.npy"), calib)
    np.save(os.path.join(OUT, "inputs.npy"), inputs)

    outs = run(net, torch.from_numpy(inputs))
    check_f64(run, net, inputs, outs)
    write_refs(os.path.join(OUT, "ref"), outs)

    # What minmax must find: min and max of every tensor over calib.npy.
    cal = run(net, torch.from_numpy(calib))
    with open(os.path.join(OUT, "ref", "ranges.txt"), "w") as f:
        f.write("# tensor min max over calib.npy (PyTorch, float32); "
                "written by tests/gen/cnn_ref.py\n")
        for name, v in cal.items():
            f.write(f"{name} {float(v.min()):.9g} {float(v.max()):.9g}\n")

    lines = ["# The CNN of tests/gen/cnn_ref.py (which writes this file): "
             "weights in the",
             "# state_dict layout, so no layer names a file.",
             "tmpipe: 1", "model:", "  frontend: npy", "  dir: weights",
             "  inputs: {input: [%s]}" % ", ".join(str(d) for d in SHAPE),
             "  layers:"]
    for name, m, src in net.plan():
        if m is None:
            entry = '{name: %s, op: add, inputs: [%s]}' % (name,
                                                           ", ".join(src))
        else:
            entry = esd.layer_yaml(name, m, src)
        lines.append("    - " + entry)
    lines += ["calibration:", "  data: calib.npy", "  observer: minmax"]
    with open(os.path.join(OUT, "pipeline.yaml"), "w") as f:
        f.write("\n".join(lines) + "\n")


def seq_cnn(gen, rng):
    folder = os.path.join(OUT, "seq")
    torch.manual_seed(1)
    net = seq_net()
    randomize_bn(net, gen)
    net.eval()
    inputs = rng.standard_normal((8,) + SHAPE).astype(F32)

    def run(model, x):
        t, out = {"input": x.numpy()}, x
        with torch.no_grad():
            for name, m in model.named_children():
                out = m(out)
                if not isinstance(m, nn.Dropout):
                    t[name] = out.numpy()
        return t

    esd.save_state_dict(net, os.path.join(folder, "weights"))
    np.save(os.path.join(folder, "inputs.npy"), inputs)
    outs = run(net, torch.from_numpy(inputs))
    check_f64(run, net, inputs, outs)
    write_refs(os.path.join(folder, "ref"), outs)

    text, bad = esd.pipeline_yaml(net, "weights", list(SHAPE),
                                  calib="inputs.npy")
    assert bad == 0
    with open(os.path.join(folder, "pipeline.yaml"), "w") as f:
        f.write("# tools/export_state_dict.py's skeleton for the "
                "nn.Sequential of\n# tests/gen/cnn_ref.py (which writes "
                "this file), unedited.\n" + text)


def main():
    os.makedirs(OUT, exist_ok=True)
    for sub in ("weights", os.path.join("seq", "weights")):
        clean(os.path.join(OUT, sub))
    gen = torch.Generator().manual_seed(1234)
    rng = np.random.default_rng(20240601)
    main_cnn(gen, rng)
    seq_cnn(gen, rng)
    return 0


if __name__ == "__main__":
    sys.exit(main())
