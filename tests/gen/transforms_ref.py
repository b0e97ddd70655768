#!/usr/bin/python3
"""Writes the small models of tests/unit/test_transforms.c into
tests/data/transforms/, with the weights the bn_fold and cle transforms
must produce.

Run with Debian's /usr/bin/python3 (it sees python3-torch and numpy):

    /usr/bin/python3 tests/gen/transforms_ref.py

The outputs are committed, so `make check` needs no Python. Every model
folder holds its weights as a PyTorch state_dict would be saved
(<layer>.<key>.npy, read by the npy frontend without file names),
inputs.npy (8 samples) and ref/:

  conv_bn   [3, 7, 6]: conv1 - bn1 - relu1 - conv2 (stride 2, no bias)
            - bn2 (eps 1e-3) - r6 (ReLU6) - dw (depthwise) - bn3, the
            output. BatchNorm statistics non-trivial, some gammas
            negative. ref/<conv>.weight|bias.npy: the folded weights,
            QUANT.md's formula in float64 rounded once to float32 (and
            checked here against torch's fuse_conv_bn_eval);
            ref/output.npy: PyTorch's output (eval mode, unfolded).
  dense_bn  [6]: fc1 - bn1 - h1 (ReLU) - fc2 (no bias) - bn2, the output.
            BatchNorm1d; ref/ as for conv_bn.
  bn_kept   [3, 6, 5]: bn0 (on the input) - conv1 - bn1 - add (bn1 +
            conv1) - act (ReLU) - bn2 - conv2 (1x1) - bn3. Only bn3 can
            fold; ref/conv2.*.npy.
  cle_dense [4]: fc1 - h1 (ReLU) - fc2. Every row of fc1 and every column
            of fc2 has range exactly 1, then row 0 of fc1 (and its bias)
            is scaled by 10 and column 0 of fc2 by 1/10: one channel 10x
            the others, the network unchanged. CLE must undo it.
  cle_conv  [3, 8, 8]: conv1 (3x3) - a1 (ReLU) - conv2 (3x3), filter 2 of
            conv1 x10 and input channel 2 of conv2 /10.
  cle_dw    [4, 6, 6]: pw0 (1x1) - a0 (ReLU) - dw (depthwise 3x3) - a1
            (LeakyReLU 0.1) - pw (1x1): a chain, depthwise as the second
            layer of one pair and the first of the next; pw0 row 3 x8 with
            dw filter 3 /8, dw filter 1 x10 with pw column 1 /10.
  cle_chain [5]: fc1 - h1 - fc2 - h2 - fc3 (ReLUs), fc1 row 2 x10 with
            fc2 column 2 /10, fc2 row 5 x0.1 with fc3 column 5 x10.
            ref/ at the defaults (tolerance 1e-6, at most 20 iterations),
            ref_it1/ after one iteration, ref_pair/ with the one pair
            (fc2, fc3).

CLE references run QUANT.md's algorithm in float64 on float64 copies,
sweeping the pairs in graph order until no scale differs from 1 by more
than the tolerance, and round once to float32, as the plugin does.
ref*/cle.txt has one line per pair, "<first> <second> <spread1 before>
<spread1 after> <spread2 before> <spread2 after>" (spread: max/min of the
channel ranges above 1e-8, r1 over the first layer's output channels, r2
over the second's input channels), and a last line "iterations <n>
<converged 0|1>".
"""

import os

import numpy as np
import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval, fuse_linear_bn_eval

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.normpath(os.path.join(HERE, "..", ".."))
OUT = os.path.join(TOP, "tests", "data", "transforms")
F32 = np.float32
RANGE_EPS = 1e-8


def save(folder, name, value):
    os.makedirs(folder, exist_ok=True)
    np.save(os.path.join(folder, name + ".npy"),
            np.ascontiguousarray(value, dtype=F32))


def randomize_bn(bn, gen):
    c = bn.num_features
    sign = torch.where(torch.rand(c, generator=gen) < 0.25, -1.0, 1.0)
    with torch.no_grad():
        bn.weight.copy_(sign * (0.5 + torch.rand(c, generator=gen)))
        bn.bias.copy_(0.5 * torch.randn(c, generator=gen))
        bn.running_mean.copy_(0.5 * torch.randn(c, generator=gen))
        bn.running_var.copy_(0.1 + 2.0 * torch.rand(c, generator=gen))


def fold_ref(w, b, bn):
    """QUANT.md's fold in float64, rounded once to float32."""
    g = bn.weight.detach().double().numpy()
    beta = bn.bias.detach().double().numpy()
    mu = bn.running_mean.detach().double().numpy()
    var = bn.running_var.detach().double().numpy()
    eps = float(np.float32(bn.eps))  # the model keeps epsilon as float
    w = w.detach().double().numpy()
    b = np.zeros(w.shape[0]) if b is None else b.detach().double().numpy()
    sigma = g / np.sqrt(var + eps)
    wf = w * sigma.reshape((-1,) + (1,) * (w.ndim - 1))
    bf = (b - mu) * sigma + beta
    return wf.astype(F32), bf.astype(F32)


def check_fold(layer, bn, wf, bf):
    """Our reference agrees with PyTorch's own fusion."""
    fuse = fuse_conv_bn_eval if isinstance(layer, nn.Conv2d) \
        else fuse_linear_bn_eval
    fused = fuse(layer, bn)
    tw = fused.weight.detach().numpy()
    tb = fused.bias.detach().numpy()
    assert np.abs(tw - wf).max() <= 1e-6 * np.abs(wf).max(), layer
    assert np.abs(tb - bf).max() <= 1e-6 * np.abs(bf).max(), layer


def write_state(folder, modules):
    for name, mod in modules:
        for key, value in mod.state_dict().items():
            if key == "num_batches_tracked":
                continue
            save(folder, name + "." + key, value.numpy())


def run(modules, x):
    """Runs modules in order, each on the previous output,
    and returns the last output."""
    with torch.no_grad():
        y = torch.from_numpy(x)
        for _, mod in modules:
            y = mod(y)
    return y.numpy()


# --- BatchNorm folding -------------------------------------------------------

def conv_bn(gen):
    folder = os.path.join(OUT, "conv_bn")
    mods = [("conv1", nn.Conv2d(3, 4, 3, padding=1)),
            ("bn1", nn.BatchNorm2d(4)), ("relu1", nn.ReLU()),
            ("conv2", nn.Conv2d(4, 6, 3, stride=2, padding=1, bias=False)),
            ("bn2", nn.BatchNorm2d(6, eps=1e-3)), ("r6", nn.ReLU6()),
            ("dw", nn.Conv2d(6, 6, 3, padding=1, groups=6)),
            ("bn3", nn.BatchNorm2d(6))]
    d = dict(mods)
    for name in ("bn1", "bn2", "bn3"):
        randomize_bn(d[name], gen)
    for _, m in mods:
        m.eval()
    write_state(folder, mods)
    x = torch.randn(8, 3, 7, 6, generator=gen).numpy()
    save(folder, "inputs", x)
    ref = os.path.join(folder, "ref")
    for conv, bn in (("conv1", "bn1"), ("conv2", "bn2"), ("dw", "bn3")):
        wf, bf = fold_ref(d[conv].weight, d[conv].bias, d[bn])
        check_fold(d[conv], d[bn], wf, bf)
        save(ref, conv + ".weight", wf)
        save(ref, conv + ".bias", bf)
    save(ref, "output", run(mods, x))


def dense_bn(gen):
    folder = os.path.join(OUT, "dense_bn")
    mods = [("fc1", nn.Linear(6, 5)), ("bn1", nn.BatchNorm1d(5)),
            ("h1", nn.ReLU()), ("fc2", nn.Linear(5, 4, bias=False)),
            ("bn2", nn.BatchNorm1d(4))]
    d = dict(mods)
    randomize_bn(d["bn1"], gen)
    randomize_bn(d["bn2"], gen)
    for _, m in mods:
        m.eval()
    write_state(folder, mods)
    x = torch.randn(8, 6, generator=gen).numpy()
    save(folder, "inputs", x)
    ref = os.path.join(folder, "ref")
    for fc, bn in (("fc1", "bn1"), ("fc2", "bn2")):
        wf, bf = fold_ref(d[fc].weight, d[fc].bias, d[bn])
        check_fold(d[fc], d[bn], wf, bf)
        save(ref, fc + ".weight", wf)
        save(ref, fc + ".bias", bf)
    save(ref, "output", run(mods, x))


def bn_kept(gen):
    folder = os.path.join(OUT, "bn_kept")
    d = {"bn0": nn.BatchNorm2d(3), "conv1": nn.Conv2d(3, 4, 3, padding=1),
         "bn1": nn.BatchNorm2d(4), "bn2": nn.BatchNorm2d(4),
         "conv2": nn.Conv2d(4, 2, 1), "bn3": nn.BatchNorm2d(2)}
    for name in ("bn0", "bn1", "bn2", "bn3"):
        randomize_bn(d[name], gen)
    for m in d.values():
        m.eval()
    write_state(folder, d.items())
    x = torch.randn(8, 3, 6, 5, generator=gen).numpy()
    save(folder, "inputs", x)
    with torch.no_grad():
        c1 = d["conv1"](d["bn0"](torch.from_numpy(x)))
        y = d["bn3"](d["conv2"](d["bn2"](torch.relu(d["bn1"](c1) + c1))))
    ref = os.path.join(folder, "ref")
    wf, bf = fold_ref(d["conv2"].weight, d["conv2"].bias, d["bn3"])
    check_fold(d["conv2"], d["bn3"], wf, bf)
    save(ref, "conv2.weight", wf)
    save(ref, "conv2.bias", bf)
    save(ref, "output", y.numpy())


# --- Cross-layer equalization -------------------------------------------------

class Layer:
    """A dense or conv2d weight as [out][in per group][taps], float64."""

    def __init__(self, name, w, b, groups=1):
        self.name = name
        self.shape = w.shape
        self.w = w.astype(np.float64).reshape(w.shape[0], w.shape[1], -1)
        self.b = None if b is None else b.astype(np.float64)
        self.groups = groups

    def out_ranges(self):
        return np.abs(self.w).reshape(self.w.shape[0], -1).max(axis=1)

    def in_rows(self, c):
        """(output channels, column) of the weights reading channel c."""
        og = self.w.shape[0] // self.groups
        ing = self.w.shape[1]
        g = c // ing
        return slice(g * og, (g + 1) * og), c % ing

    def in_ranges(self, n):
        r = np.zeros(n)
        for c in range(n):
            rows, col = self.in_rows(c)
            r[c] = np.abs(self.w[rows, col, :]).max()
        return r

    def weight(self):
        return self.w.reshape(self.shape).astype(F32)

    def bias(self):
        return self.b.astype(F32)


def spread(r):
    r = r[r > RANGE_EPS]
    return r.max() / r.min() if r.size else 1.0


def cle_ref(layers, pairs, iterations=20, tolerance=1e-6):
    """QUANT.md's CLE over pairs of names, in order; returns the spreads
    per pair, the iterations and whether it converged."""
    before = []
    for a, b in pairs:
        n = layers[a].w.shape[0]
        before.append((spread(layers[a].out_ranges()),
                       spread(layers[b].in_ranges(n))))
    it, converged = 0, False
    while it < iterations and not converged:
        change = 0.0
        for a, b in pairs:
            la, lb = layers[a], layers[b]
            n = la.w.shape[0]
            r1, r2 = la.out_ranges(), lb.in_ranges(n)
            for c in range(n):
                if r1[c] <= RANGE_EPS or r2[c] <= RANGE_EPS:
                    continue
                s = np.sqrt(r1[c] / r2[c])
                la.w[c] /= s
                if la.b is not None:
                    la.b[c] /= s
                rows, col = lb.in_rows(c)
                lb.w[rows, col, :] *= s
                change = max(change, abs(s - 1.0))
        it += 1
        converged = change <= tolerance
    lines = []
    for (a, b), (s1, s2) in zip(pairs, before):
        n = layers[a].w.shape[0]
        lines.append("%s %s %.9g %.9g %.9g %.9g" % (
            a, b, s1, spread(layers[a].out_ranges()), s2,
            spread(layers[b].in_ranges(n))))
    lines.append("iterations %d %d" % (it, int(converged)))
    return lines


def write_cle(folder, refname, mods, groups, pairs, **kw):
    layers = {}
    for name, m in mods:
        if isinstance(m, (nn.Linear, nn.Conv2d)):
            b = None if m.bias is None else m.bias.detach().numpy()
            layers[name] = Layer(name, m.weight.detach().numpy(), b,
                                 groups.get(name, 1))
    lines = cle_ref(layers, pairs, **kw)
    ref = os.path.join(folder, refname)
    os.makedirs(ref, exist_ok=True)
    for name, l in layers.items():
        save(ref, name + ".weight", l.weight())
        if l.b is not None:
            save(ref, name + ".bias", l.bias())
    with open(os.path.join(ref, "cle.txt"), "w") as fp:
        fp.write("\n".join(lines) + "\n")


def scale_pair(first, second, c, k):
    """Output channel c of first times k, input channel c of second over
    k: the same network, one channel imbalanced."""
    with torch.no_grad():
        first.weight[c] *= k
        if first.bias is not None:
            first.bias[c] *= k
        if isinstance(second, nn.Conv2d) and second.groups > 1:
            per = second.in_channels // second.groups
            og = second.out_channels // second.groups
            g = c // per
            second.weight[g * og:(g + 1) * og, c % per] /= k
        else:
            second.weight[:, c] /= k


def cle_dense(gen):
    folder = os.path.join(OUT, "cle_dense")
    fc1, fc2 = nn.Linear(4, 8), nn.Linear(8, 3)
    with torch.no_grad():
        fc1.weight.uniform_(-1, 1, generator=gen)
        fc2.weight.uniform_(-1, 1, generator=gen)
        # Every range exactly 1 (x / max|x| rounds max to 1.0).
        fc1.weight /= fc1.weight.abs().amax(dim=1, keepdim=True)
        fc2.weight /= fc2.weight.abs().amax(dim=0, keepdim=True)
    scale_pair(fc1, fc2, 0, 10.0)
    mods = [("fc1", fc1), ("h1", nn.ReLU()), ("fc2", fc2)]
    write_state(folder, mods)
    save(folder, "inputs", torch.randn(8, 4, generator=gen).numpy())
    write_cle(folder, "ref", mods, {}, [("fc1", "fc2")])


def cle_conv(gen):
    folder = os.path.join(OUT, "cle_conv")
    c1, c2 = nn.Conv2d(3, 6, 3, padding=1), nn.Conv2d(6, 5, 3, padding=1)
    scale_pair(c1, c2, 2, 10.0)
    mods = [("conv1", c1), ("a1", nn.ReLU()), ("conv2", c2)]
    write_state(folder, mods)
    save(folder, "inputs", torch.randn(8, 3, 8, 8, generator=gen).numpy())
    write_cle(folder, "ref", mods, {}, [("conv1", "conv2")])


def cle_dw(gen):
    folder = os.path.join(OUT, "cle_dw")
    pw0 = nn.Conv2d(4, 6, 1)
    dw = nn.Conv2d(6, 6, 3, padding=1, groups=6)
    pw = nn.Conv2d(6, 5, 1)
    scale_pair(pw0, dw, 3, 8.0)
    scale_pair(dw, pw, 1, 10.0)
    mods = [("pw0", pw0), ("a0", nn.ReLU()), ("dw", dw),
            ("a1", nn.LeakyReLU(0.1)), ("pw", pw)]
    write_state(folder, mods)
    save(folder, "inputs", torch.randn(8, 4, 6, 6, generator=gen).numpy())
    write_cle(folder, "ref", mods, {"dw": 6}, [("pw0", "dw"), ("dw", "pw")])


def cle_chain(gen):
    folder = os.path.join(OUT, "cle_chain")
    fc1, fc2, fc3 = nn.Linear(5, 8), nn.Linear(8, 8), nn.Linear(8, 3)
    scale_pair(fc1, fc2, 2, 10.0)
    scale_pair(fc2, fc3, 5, 0.1)
    mods = [("fc1", fc1), ("h1", nn.ReLU()), ("fc2", fc2), ("h2", nn.ReLU()),
            ("fc3", fc3)]
    write_state(folder, mods)
    save(folder, "inputs", torch.randn(8, 5, generator=gen).numpy())
    pairs = [("fc1", "fc2"), ("fc2", "fc3")]
    write_cle(folder, "ref", mods, {}, pairs)
    write_cle(folder, "ref_it1", mods, {}, pairs, iterations=1)
    write_cle(folder, "ref_pair", mods, {}, [("fc2", "fc3")])


def main():
    torch.manual_seed(20261201)
    gen = torch.Generator().manual_seed(20261201)
    for make in (conv_bn, dense_bn, bn_kept, cle_dense, cle_conv, cle_dw,
                 cle_chain):
        make(gen)


if __name__ == "__main__":
    main()
