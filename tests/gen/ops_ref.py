#!/usr/bin/python3
"""Writes the known answers of tests/unit/test_ops.c into tests/data/ops/.

Run with Debian's /usr/bin/python3 (it sees python3-torch and python3-numpy):

    /usr/bin/python3 tests/gen/ops_ref.py

The outputs are committed, so `make check` needs no Python. Every case is a
folder tests/data/ops/<case>/ holding

    input_0.bin, input_1.bin, ...  raw little-endian float32, C order; an
                                   activation as n samples one after the
                                   other, a constant as its full shape
    output.bin                     the expected output, n samples
    meta.txt                       one "key value..." per line (see META)

Inputs are float32 from a seeded generator; the references are computed by
PyTorch (or numpy where PyTorch has no direct equivalent, e.g. asymmetric
average-pool padding) in float64 on those float32 values and rounded once to
float32, so they are as exact as float32 can hold. Attribute floats (alpha,
epsilon, clip bounds) are written with 9 significant digits and used by the
reference as the float32 the C test will parse.

META keys (activation dims are per sample, without the batch; axes are
per-sample, i.e. PyTorch's axis minus 1):

    op <name>                 as tm_op_name()
    n <samples>
    inputs <count>
    in<i> act|const <ndim> <dims...>
    out <ndim> <dims...>
    stride sh sw | pads top left bottom right | dilation dh dw | group g
    kernel kh kw | axis a | alpha x | clip lo hi | epsilon e
    count_include_pad 0|1 | shape <ndim> <dims...>
"""

import os
import shutil

import numpy as np
import torch
import torch.nn.functional as F

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                   "..", "data", "ops")
N = 3
RNG = np.random.default_rng(20240531)

CASES = []


def f32(x):
    """The float32 value C will parse from the %.9g text of x."""
    return float(np.float32(x))


def rand(*shape, scale=1.0, lo=None, hi=None):
    if lo is not None:
        a = RNG.uniform(lo, hi, size=shape)
    else:
        a = RNG.standard_normal(shape) * scale
    return a.astype(np.float32)


def act(*shape, **kw):
    """An activation: n samples of the per-sample shape."""
    return ("act", rand(N, *shape, **kw))


def const(*shape, **kw):
    return ("const", rand(*shape, **kw))


def t64(a):
    return torch.from_numpy(np.asarray(a, dtype=np.float64))


def case(name, op, inputs, out, **attrs):
    """inputs: list of (kind, float32 array); out: float64 batch result."""
    out = np.asarray(out, dtype=np.float64)
    assert out.shape[0] == N, (name, out.shape)
    CASES.append((name, op, inputs, out.astype(np.float32), attrs))


def fmt(x):
    if isinstance(x, float):
        return "%.9g" % x
    return str(x)


def write_case(name, op, inputs, out, attrs):
    d = os.path.join(OUT, name)
    os.makedirs(d)
    meta = ["op " + op, "n %d" % N, "inputs %d" % len(inputs)]
    for i, (kind, a) in enumerate(inputs):
        shape = a.shape[1:] if kind == "act" else a.shape
        meta.append("in%d %s %d %s" % (i, kind, len(shape),
                                       " ".join(map(str, shape))))
        a.astype("<f4").tofile(os.path.join(d, "input_%d.bin" % i))
    meta.append("out %d %s" % (out.ndim - 1,
                               " ".join(map(str, out.shape[1:]))))
    for k, v in attrs.items():
        v = v if isinstance(v, (list, tuple)) else [v]
        meta.append(k + " " + " ".join(fmt(x) for x in v))
    out.astype("<f4").tofile(os.path.join(d, "output.bin"))
    with open(os.path.join(d, "meta.txt"), "w") as f:
        f.write("\n".join(meta) + "\n")


# ---------------------------------------------------------------- dense


def dense(name, k, o, bias=True):
    x, w = act(k), const(o, k)
    b = const(o) if bias else None
    y = F.linear(t64(x[1]), t64(w[1]), t64(b[1]) if bias else None)
    case(name, "dense", [x, w] + ([b] if bias else []), y)


dense("dense_bias", 7, 5)
dense("dense_nobias", 13, 3, bias=False)
dense("dense_1x1", 1, 1)
dense("dense_wide", 37, 9)


# ---------------------------------------------------------------- matmul


def matmul(name, xshape, n_out):
    x, b = act(*xshape), const(xshape[-1], n_out)
    case(name, "matmul", [x, b], torch.matmul(t64(x[1]), t64(b[1])))


matmul("matmul_vec", (6,), 4)
matmul("matmul_2d", (5, 6), 3)
matmul("matmul_3d", (2, 3, 4), 5)
matmul("matmul_k1", (4, 1), 3)


# ---------------------------------------------------------------- conv2d


def conv(name, cin, h, w, cout, kh, kw, stride=(1, 1), pads=(0, 0, 0, 0),
         dilation=(1, 1), group=1, bias=True):
    x = act(cin, h, w)
    wt = const(cout, cin // group, kh, kw, scale=0.5)
    b = const(cout) if bias else None
    top, left, bottom, right = pads
    # F.pad takes (left, right, top, bottom) for the last two dimensions;
    # padding the input and convolving without padding handles any
    # asymmetric padding.
    xp = F.pad(t64(x[1]), (left, right, top, bottom))
    y = F.conv2d(xp, t64(wt[1]), t64(b[1]) if bias else None,
                 stride=stride, dilation=dilation, groups=group)
    ins = [x, wt] + ([b] if bias else [])
    case(name, "conv2d", ins, y, stride=stride, pads=pads,
         dilation=dilation, group=group)


conv("conv_1x1", 4, 5, 6, 3, 1, 1)
conv("conv_1x1_nobias", 5, 3, 4, 2, 1, 1, bias=False)
conv("conv_3x3", 3, 6, 5, 4, 3, 3)
conv("conv_3x3_s2_p1", 3, 9, 7, 4, 3, 3, stride=(2, 2), pads=(1, 1, 1, 1))
conv("conv_3x3_s2_p1_nobias", 2, 8, 8, 3, 3, 3, stride=(2, 2),
     pads=(1, 1, 1, 1), bias=False)
conv("conv_asym_pads", 2, 6, 5, 3, 3, 3, pads=(1, 0, 2, 1))
conv("conv_dilation2", 2, 9, 8, 3, 3, 3, dilation=(2, 2), pads=(2, 2, 2, 2))
conv("conv_depthwise", 4, 7, 6, 4, 3, 3, pads=(1, 1, 1, 1), group=4)
conv("conv_depthwise_s2_nobias", 3, 7, 8, 3, 3, 3, stride=(2, 2),
     pads=(0, 1, 1, 0), group=3, bias=False)
conv("conv_depthwise_mult2", 3, 5, 6, 6, 3, 3, pads=(1, 1, 1, 1), group=3)
conv("conv_group2", 4, 6, 7, 6, 3, 2, stride=(1, 2), group=2)
conv("conv_nonsquare", 3, 5, 11, 2, 2, 5, stride=(2, 3), pads=(0, 2, 1, 1),
     dilation=(1, 2), bias=False)
conv("conv_k_eq_input", 2, 3, 4, 5, 3, 4)
conv("conv_wide_k", 16, 6, 6, 8, 3, 3, pads=(1, 1, 1, 1))


# ---------------------------------------------------------------- batchnorm


def batchnorm(name, shape, eps=None, small_var=False):
    c = shape[0]
    x = act(*shape)
    gamma, beta, mean = const(c), const(c), const(c)
    var = const(c, lo=1e-4, hi=1e-3) if small_var else const(c, lo=0.2,
                                                              hi=2.0)
    e = f32(1e-5 if eps is None else eps)
    y = F.batch_norm(t64(x[1]), t64(mean[1]), t64(var[1]), t64(gamma[1]),
                     t64(beta[1]), training=False, eps=e)
    attrs = {} if eps is None else {"epsilon": e}
    case(name, "batchnorm", [x, gamma, beta, mean, var], y, **attrs)


batchnorm("batchnorm_chw", (4, 3, 5))
batchnorm("batchnorm_eps", (3, 4, 2), eps=1e-3, small_var=True)
batchnorm("batchnorm_1d", (6,))


# ---------------------------------------------------------------- unary


def unary(name, op, x, fn, **attrs):
    case(name, op, [x], fn(t64(x[1])), **attrs)


unary("relu_chw", "relu", act(3, 4, 5), F.relu)
unary("relu_1d", "relu", act(17), F.relu)
unary("clip_relu6", "clip", act(3, 4, 5, scale=5.0),
      lambda t: torch.clamp(t, 0.0, 6.0), clip=(0.0, 6.0))
lo, hi = f32(-0.5), f32(1.25)
unary("clip_range", "clip", act(2, 3, 7),
      lambda t: torch.clamp(t, lo, hi), clip=(lo, hi))
alpha = f32(0.2)
unary("leaky_relu", "leaky_relu", act(3, 4, 5),
      lambda t: F.leaky_relu(t, alpha), alpha=alpha)
alpha = f32(0.01)
unary("leaky_relu_default", "leaky_relu", act(11),
      lambda t: F.leaky_relu(t, alpha), alpha=alpha)
# Large magnitudes: exp must not overflow into NaN.
sig_x = act(4, 9, scale=6.0)
sig_x[1][:, 0, :] = np.array([-100, -40, -20, -1e-3, 0, 1e-3, 20, 40, 100],
                             dtype=np.float32)
unary("sigmoid", "sigmoid", sig_x, torch.sigmoid)
tanh_x = act(4, 9, scale=3.0)
tanh_x[1][:, 0, :] = sig_x[1][:, 0, :]
unary("tanh", "tanh", tanh_x, torch.tanh)


# ---------------------------------------------------------------- softmax


def softmax(name, x, axis, **kw):
    a = axis if axis < 0 else axis + 1
    case(name, "softmax", [x], torch.softmax(t64(x[1]), dim=a),
         axis=axis, **kw)


softmax("softmax_axis0", act(4, 3, 5, scale=2.0), 0)
softmax("softmax_last", act(4, 3, 5, scale=2.0), -1)
softmax("softmax_axis1", act(2, 6, 3, scale=2.0), 1)
softmax("softmax_last_pos", act(2, 3, 6, scale=2.0), 2)
softmax("softmax_1d", act(10, scale=3.0), 0)
# Logits far from zero: a kernel that does not subtract the maximum
# overflows exp() and returns NaN or 0/0.
big = act(3, 4, 5, scale=30.0)
big[1][0] += 1000.0
big[1][1] -= 1000.0
softmax("softmax_large_axis0", big, 0)
big = act(3, 4, 5, scale=30.0)
big[1][0] += 500.0
big[1][2] -= 700.0
softmax("softmax_large_last", big, -1)


# ---------------------------------------------------------------- pools


def maxpool(name, x, k, stride, pads=(0, 0, 0, 0), dilation=(1, 1)):
    top, left, bottom, right = pads
    xp = F.pad(t64(x[1]), (left, right, top, bottom), value=-np.inf)
    y = F.max_pool2d(xp, k, stride=stride, dilation=dilation)
    case(name, "maxpool2d", [x], y, kernel=k, stride=stride, pads=pads,
         dilation=dilation)


maxpool("maxpool_2x2", act(3, 6, 7), (2, 2), (2, 2))
maxpool("maxpool_3x3_s2_p1", act(2, 9, 8), (3, 3), (2, 2), (1, 1, 1, 1))
maxpool("maxpool_dilation", act(2, 8, 9), (2, 3), (1, 2), (1, 0, 0, 1),
        (2, 1))
# Every value negative: padding must count as -inf, not 0.
maxpool("maxpool_negative_pad", act(2, 5, 6, lo=-3.0, hi=-1.0), (3, 2),
        (2, 1), (1, 1, 2, 1))
maxpool("maxpool_1x1_s2", act(3, 5, 4), (1, 1), (2, 2))


def avgpool_ref(x, k, stride, pads, include):
    """ONNX AveragePool (ceil_mode 0) in numpy, float64."""
    x = np.asarray(x, dtype=np.float64)
    top, left, bottom, right = pads
    n, c, h, w = x.shape
    xp = np.zeros((n, c, h + top + bottom, w + left + right))
    mask = np.zeros((h + top + bottom, w + left + right))
    xp[:, :, top:top + h, left:left + w] = x
    mask[top:top + h, left:left + w] = 1
    ho = (h + top + bottom - k[0]) // stride[0] + 1
    wo = (w + left + right - k[1]) // stride[1] + 1
    y = np.zeros((n, c, ho, wo))
    for i in range(ho):
        for j in range(wo):
            r, s = i * stride[0], j * stride[1]
            win = xp[:, :, r:r + k[0], s:s + k[1]]
            cnt = k[0] * k[1] if include else \
                mask[r:r + k[0], s:s + k[1]].sum()
            y[:, :, i, j] = win.sum(axis=(2, 3)) / cnt
    return y


def avgpool(name, x, k, stride, pads=(0, 0, 0, 0), include=1):
    top, left, bottom, right = pads
    y = avgpool_ref(x[1], k, stride, pads, include)
    if top == bottom and left == right:
        # Cross-check the numpy reference against PyTorch.
        yt = F.avg_pool2d(t64(x[1]), k, stride=stride, padding=(top, left),
                          count_include_pad=bool(include)).numpy()
        assert np.allclose(y, yt, rtol=0, atol=1e-12), name
    case(name, "avgpool2d", [x], y, kernel=k, stride=stride, pads=pads,
         count_include_pad=include)


avgpool("avgpool_2x2", act(3, 6, 7), (2, 2), (2, 2))
avgpool("avgpool_pad_incl", act(3, 7, 6), (3, 3), (2, 2), (1, 1, 1, 1), 1)
avgpool("avgpool_pad_excl", act(3, 7, 6), (3, 3), (2, 2), (1, 1, 1, 1), 0)
avgpool("avgpool_asym_incl", act(2, 5, 7), (2, 3), (1, 2), (0, 1, 1, 2), 1)
avgpool("avgpool_asym_excl", act(2, 5, 7), (2, 3), (1, 2), (0, 1, 1, 2), 0)


def gap(name, x):
    case(name, "global_avgpool", [x],
         F.adaptive_avg_pool2d(t64(x[1]), 1))


gap("global_avgpool", act(5, 4, 7))
gap("global_avgpool_1x1", act(3, 1, 1))
gap("global_avgpool_row", act(2, 1, 9))


# ---------------------------------------------------------------- shapes


def flatten(name, x, axis):
    t = t64(x[1])
    per = t.shape[1:]
    lead = int(np.prod(per[:axis])) if axis else None
    y = t.reshape(N, -1) if axis == 0 else t.reshape(N, lead, -1)
    case(name, "flatten", [x], y, axis=axis)


flatten("flatten_axis0", act(3, 4, 5), 0)
flatten("flatten_axis1", act(3, 4, 5), 1)
flatten("flatten_axis2", act(3, 4, 5), 2)


def reshape(name, x, shape):
    # ONNX: 0 copies the input's dimension at the same position.
    per = x[1].shape[1:]
    tgt = [per[i] if d == 0 else d for i, d in enumerate(shape)]
    y = t64(x[1]).reshape(N, *tgt)
    case(name, "reshape", [x], y, shape=[len(shape)] + list(shape))


reshape("reshape_minus1", act(3, 4, 5), (-1, 10))
reshape("reshape_zero", act(3, 4, 5), (0, -1))
reshape("reshape_zero_mid", act(3, 4, 5), (5, 0, 3))
reshape("reshape_to_1d", act(2, 3, 4), (-1,))
reshape("reshape_up", act(24), (2, 3, 4))


def add(name, a, b):
    # A constant has no batch dimension: numpy broadcasting aligns it
    # with the trailing per-sample dimensions.
    y = t64(a[1]) + t64(b[1]) if b[0] == "act" else \
        t64(a[1]) + t64(b[1]).unsqueeze(0)
    case(name, "add", [a, b], y)


add("add_same", act(3, 4, 5), act(3, 4, 5))
add("add_same_1d", act(7), act(7))
add("add_chan_const", act(4, 3, 5), const(4, 1, 1))
add("add_w_const", act(3, 4, 5), const(5))
add("add_full_const", act(2, 3, 4), const(2, 3, 4))
add("add_scalar_const", act(2, 3, 4), const(1))
add("add_act_chan", act(4, 3, 5), act(4, 1, 1))
add("add_h_const", act(3, 4, 5), const(4, 1))


def concat(name, xs, axis):
    a = axis if axis < 0 else axis + 1
    case(name, "concat", xs, torch.cat([t64(x[1]) for x in xs], dim=a),
         axis=axis)


concat("concat_ch", [act(2, 3, 4), act(3, 3, 4), act(1, 3, 4)], 0)
concat("concat_h", [act(2, 3, 4), act(2, 1, 4)], 1)
concat("concat_w_neg", [act(2, 3, 4), act(2, 3, 2)], -1)
concat("concat_1d", [act(5), act(3)], 0)
concat("concat_one", [act(2, 3)], 0)


# ---------------------------------------------------------------- later
# Cases added after the first commit of the data go here, at the end: all
# cases draw from one generator, so a case inserted earlier would change
# the committed data of every case after it.

softmax("softmax_axis_m2", act(2, 6, 3, scale=2.0), -2)


def main():
    if os.path.isdir(OUT):
        shutil.rmtree(OUT)
    os.makedirs(OUT)
    names = set()
    for name, op, inputs, out, attrs in CASES:
        assert name not in names, name
        names.add(name)
        assert np.all(np.isfinite(out)), name
        write_case(name, op, inputs, out, attrs)
    total = 0
    for root, _, files in os.walk(OUT):
        total += sum(os.path.getsize(os.path.join(root, f)) for f in files)
    print("%d cases, %d bytes in %s" % (len(CASES), total,
                                        os.path.normpath(OUT)))


if __name__ == "__main__":
    main()
