#!/usr/bin/python3
"""Writes the data of tests/unit/test_dfq.c (bias_absorb, bias_correct,
transform order rules and recalibration, cle's int8 gain) into
tests/data/dfq/, with the numbers the tests assert, computed here in
float64 from the formulas of Nagel et al. 2019 ("Data-Free Quantization
Through Weight Equalization and Bias Correction", section 4.2) and
QUANT.md.

Run with Debian's /usr/bin/python3 (numpy, torch):

    /usr/bin/python3 tests/gen/dfq_ref.py

The outputs are committed; `make check` needs no Python.

  absorb/   [4]: fc1 (6x4) - bn1 - h1 (ReLU) - fc2 (3x6). bn1's running
            statistics are fc1's output's over inputs.npy (16 samples,
            the running variance inflated so every normalized value is
            within 1.2 sigma): after folding, every pre-activation of
            channel c is >= beta_c - 1.2 |gamma_c| > beta_c - 3 |gamma_c|,
            so relu(x - c) = relu(x) - c holds exactly and absorption must
            keep the output (1e-5). Channel 4 has beta < 3 |gamma| (c = 0,
            left alone). ref/: fc1.bias.npy and fc2.bias.npy after
            bn_fold + bias_absorb, c.npy (the shifts), range.txt: the
            minmax range of h1 over inputs.npy before and after
            ("lo hi" twice): hi shrinks by the known amount.
  absorb_conv/ [2, 6, 6]: conv1 (3x3, pad 1) - bn1 - a1 (ReLU) - conv2
            (3x3, no padding), bn1's statistics made as for absorb (every
            pre-activation above its shift), channel 2 with c = 0.
            ref/conv1.bias.npy, ref/conv2.bias.npy: after bn_fold +
            bias_absorb (conv2's bias + W2 c summed over the taps). The
            test also runs conv2 with padding 1: left alone.
  correct/  [8]: fc (4x8), the output. Weights (k + 0.4) / 127 with one
            entry 1.0 per tensor, so per-tensor int8 rounding (scale
            1/127) moves each by -0.4/127 or so: a biased error, on inputs
            uniform in [0.5, 1.5] (mean 1). calib.npy (64 samples) and
            holdout.npy (64). ref/correction.npy: (W_q - W) E[x] over
            calib.npy; ref/bias_q.npy: the int32 biases quantize makes
            after bias_correct, lround((b - corr) / (s_in s_w));
            ref/bias_q0.npy the same without; ref/mean_error.txt: the
            mean over holdout and channels of |mean over samples of
            (int8 - float)| for the int8 model without and with the
            correction, emulating the runtime (input quantized with
            calib's minmax range, int32 accumulate, requantize with
            QUANT.md's Q31 multiplier and gemmlowp's rounding, output with
            calib's output range).
  correct_conv/ [3, 7, 6]: conv1 (3x3, stride 2, pad 1) - a1 (ReLU) -
            conv2 (3x3, pad 1, 2 groups), inputs uniform in [0.5, 1.5];
            ref/<conv>.correction.npy: (W_q - W) E[x] per output channel
            with weights per channel, as the mean output of the
            convolution by W_q - W over the samples and positions (torch,
            float64).
  correct_mlp/ [6]: fc1 (8x6) - h1 (ReLU) - fc2 (6x8) - h2 (ReLU) - fc3
            (3x6), the output; calib.npy, holdout.npy (256 samples each,
            uniform in [-0.5, 1.5]; calib_large.npy and
            holdout_large.npy, 4096 each, for the mean output error of
            tests/unit/test_dfq.c); ranges minmax, but h1's the
            percentile (0, 90) range (numpy.percentile; the observer is
            within 3.7e-9 R of it): the int8 model clips h1's top tenth,
            which lowers its mean. ref/<layer>.weights.npy: the weights
            mode's correction (W_q - W) E[x], weights per tensor;
            ref/<layer>.empirical.npy: the empirical mode's, W_q E[x~] -
            W E[x], with x~ the layer's input in a float64 fake-quantized
            emulation of the int8 model (activations rounded to their
            int8 grid at the calibrated scale and zero point, fc1 and
            fc2's outputs not (the ReLU is folded into them), weights
            dequantized, the earlier layers' biases corrected first).
            The emulation checks that no value it rounds is within 1e-4
            steps of a tie, so float32 and float64 agree on every
            rounding.
  correct_conv/ ref/<conv>.empirical.npy: the same for the conv net
            below (weights per channel, minmax ranges), by convolving
            the fake-quantized inputs with W_q and the float ones with W
            (torch, float64), averaged over samples and positions.
  cle/      calib.npy and holdout.npy, 256 samples each of the input of
            tests/data/transforms/cle_dense (randn [4]), for the int8
            SQNR with and without cle.
"""

import os

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.normpath(os.path.join(HERE, "..", ".."))
OUT = os.path.join(TOP, "tests", "data", "dfq")
F32 = np.float32


def save(folder, name, value, dtype=F32):
    os.makedirs(folder, exist_ok=True)
    np.save(os.path.join(folder, name + ".npy"),
            np.ascontiguousarray(value, dtype=dtype))


def lround(v):
    """C's lround: ties away from zero."""
    v = np.asarray(v, dtype=np.float64)
    return np.sign(v) * np.floor(np.abs(v) + 0.5)


# --- bias_absorb ------------------------------------------------------------

def absorb(rng):
    folder = os.path.join(OUT, "absorb")
    w1 = rng.uniform(-1, 1, (6, 4))
    b1 = rng.uniform(-0.5, 0.5, 6)
    w2 = rng.uniform(-1, 1, (3, 6))
    b2 = rng.uniform(-0.5, 0.5, 3)
    x = rng.uniform(-1, 1, (16, 4)).astype(F32)
    w1, b1, w2, b2 = (a.astype(F32) for a in (w1, b1, w2, b2))
    z = x.astype(np.float64) @ w1.T.astype(np.float64) + b1
    mean = z.mean(axis=0)
    eps = 1e-5
    # Every normalized value within 1.2 sigma.
    var = (np.abs(z - mean).max(axis=0) / 1.2) ** 2 - eps
    gamma = rng.uniform(0.3, 0.6, 6) * np.where(rng.uniform(size=6) < 0.3,
                                                -1.0, 1.0)
    beta = rng.uniform(2.0, 4.0, 6)
    beta[4] = 2.5 * abs(gamma[4])          # c = 0 for channel 4
    mean, var, gamma, beta = (a.astype(F32) for a in (mean, var, gamma,
                                                      beta))
    for name, v in (("fc1.weight", w1), ("fc1.bias", b1),
                    ("fc2.weight", w2), ("fc2.bias", b2),
                    ("bn1.weight", gamma), ("bn1.bias", beta),
                    ("bn1.running_mean", mean), ("bn1.running_var", var)):
        save(folder, name, v)
    save(folder, "inputs", x)

    # bn_fold (QUANT.md) in float64, rounded once: what the plugin stores.
    sigma = gamma.astype(np.float64) / np.sqrt(var.astype(np.float64) +
                                               float(F32(eps)))
    w1f = (w1 * sigma[:, None]).astype(F32)
    b1f = ((b1 - mean.astype(np.float64)) * sigma + beta).astype(F32)
    # Absorption: c = max(0, beta - 3 |gamma|).
    c = np.maximum(0.0, beta.astype(np.float64) - 3.0 *
                   np.abs(gamma.astype(np.float64)))
    assert c[4] == 0.0 and (np.delete(c, 4) > 0).all()
    b1a = (b1f - c).astype(F32)
    b2a = (b2 + w2.astype(np.float64) @ c).astype(F32)
    pre = x.astype(np.float64) @ w1f.T.astype(np.float64) + b1f
    assert (pre >= beta - 1.2001 * np.abs(gamma) - 1e-6).all()
    assert (pre >= c).all()                # the shift is exact
    h_before = np.maximum(pre, 0.0)
    h_after = np.maximum(pre - c, 0.0)
    y_before = h_before @ w2.T.astype(np.float64) + b2
    y_after = h_after @ w2.T.astype(np.float64) + b2a
    assert np.abs(y_after - y_before).max() < 1e-5
    ref = os.path.join(folder, "ref")
    save(ref, "fc1.bias", b1a)
    save(ref, "fc2.bias", b2a)
    save(ref, "c", c)
    with open(os.path.join(ref, "range.txt"), "w") as f:
        f.write("%.9g %.9g\n%.9g %.9g\n" % (h_before.min(), h_before.max(),
                                            h_after.min(), h_after.max()))


def absorb_conv(gen):
    folder = os.path.join(OUT, "absorb_conv")
    c1 = torch.nn.Conv2d(2, 3, 3, padding=1)
    c2 = torch.nn.Conv2d(3, 2, 3)
    bn = torch.nn.BatchNorm2d(3)
    # From gen, not torch's global generator (its default initialization
    # would change with every run).
    with torch.no_grad():
        for c in (c1, c2):
            c.weight.uniform_(-0.5, 0.5, generator=gen)
            c.bias.uniform_(-0.2, 0.2, generator=gen)
    x = (torch.rand(8, 2, 6, 6, generator=gen) * 2 - 1)
    with torch.no_grad():
        z = c1(x).double()
        mean = z.mean(dim=(0, 2, 3))
        dev = (z - mean[None, :, None, None]).abs().amax(dim=(0, 2, 3))
        bn.running_mean.copy_(mean.float())
        bn.running_var.copy_((dev / 1.2) ** 2 - bn.eps)
        bn.weight.copy_(torch.tensor([0.5, -0.4, 0.3]))
        bn.bias.copy_(torch.tensor([3.0, 2.5, 0.5]))   # c = 0 for the last
    bn.eval()
    for name, m in (("conv1", c1), ("conv2", c2), ("bn1", bn)):
        for key, v in m.state_dict().items():
            if key != "num_batches_tracked":
                save(folder, name + "." + key, v.numpy())
    save(folder, "inputs", x.numpy())
    g = bn.weight.detach().double().numpy()
    beta = bn.bias.detach().double().numpy()
    c = np.maximum(0.0, beta - 3.0 * np.abs(g))
    assert c[2] == 0.0 and (c[:2] > 0).all()
    with torch.no_grad():
        pre = bn(c1(x)).double().numpy()
    assert (pre >= c[None, :, None, None]).all()
    # The folded bias minus c, and conv2's plus W2 c over the taps.
    sigma = g / np.sqrt(bn.running_var.double().numpy() + bn.eps)
    b1f = ((c1.bias.detach().double().numpy() -
            bn.running_mean.double().numpy()) * sigma + beta).astype(F32)
    w2 = c2.weight.detach().double().numpy()
    ref = os.path.join(folder, "ref")
    save(ref, "conv1.bias", b1f - c)
    save(ref, "conv2.bias", c2.bias.detach().double().numpy() +
         np.einsum("oikl,i->o", w2, c))


# --- bias_correct -----------------------------------------------------------

def affine(lo, hi):
    """QUANT.md's activation parameters (asymmetric, [-128, 127])."""
    lo, hi = min(lo, 0.0), max(hi, 0.0)
    if hi == lo:
        return 1.0, -128
    scale = (hi - lo) / 255.0
    zp = int(np.clip(lround(-128 - lo / scale), -128, 127))
    return scale, zp


def quantize_multiplier(m):
    """QUANT.md, host side: m = q 2^-31 2^-shift."""
    if m == 0.0:
        return 0, 0
    f, e = np.frexp(m)
    q = int(lround(f * 2.0 ** 31))
    if q == 2 ** 31:
        q, e = 2 ** 30, e + 1
    return q, -int(e)


def requantize(acc, q, shift):
    """QUANT.md, runtime side (gemmlowp): SRDHM then RDBPOT, on Python
    integers."""
    left, right = max(-shift, 0), max(shift, 0)
    out = []
    for a in acc:
        ab = int(a) * (2 ** left) * q
        nudge = 2 ** 30 if ab >= 0 else 1 - 2 ** 30
        t = ab + nudge
        hi = abs(t) // 2 ** 31 * (1 if t >= 0 else -1)   # C division
        mask = 2 ** right - 1
        rem, thr = hi & mask, (mask >> 1) + (1 if hi < 0 else 0)
        out.append((hi >> right) + (1 if rem > thr else 0))
    return np.array(out, dtype=np.float64)


def int8_dense(x, wq, s_w, bq, s_in, zp_in, s_out, zp_out):
    xq = np.clip(lround(x.astype(np.float64) / s_in) + zp_in, -128, 127)
    acc = ((xq - zp_in) @ wq.T + bq).astype(np.int64)
    q, shift = quantize_multiplier(s_in * s_w / s_out)
    yq = requantize(acc.ravel(), q, shift).reshape(acc.shape)
    yq = np.clip(yq + zp_out, -128, 127)
    return s_out * (yq - zp_out)


def correct(rng):
    folder = os.path.join(OUT, "correct")
    k = rng.integers(-100, 100, (4, 8)).astype(np.float64)
    w = (k + 0.4) / 127.0
    w[0, 0] = 1.0                          # s_w = 1/127 exactly
    w = w.astype(F32)
    b = rng.uniform(-0.2, 0.2, 4).astype(F32)
    calib = rng.uniform(0.5, 1.5, (64, 8)).astype(F32)
    hold = rng.uniform(0.5, 1.5, (64, 8)).astype(F32)
    save(folder, "fc.weight", w)
    save(folder, "fc.bias", b)
    save(folder, "calib", calib)
    save(folder, "holdout", hold)

    w64 = w.astype(np.float64)
    s_w = float(np.abs(w64).max()) / 127.0
    wq = np.clip(lround(w64 / s_w), -127, 127)
    dw = wq * s_w - w64
    corr = dw @ calib.astype(np.float64).mean(axis=0)
    # Ranges: minmax over calib of the input and of the float output
    # (the float32 model's, as the interpreter computes them).
    s_in, zp_in = affine(float(calib.min()), float(calib.max()))
    y32 = (calib @ w.T + b).astype(F32)
    s_out, zp_out = affine(float(y32.min()), float(y32.max()))
    bq0 = lround(b.astype(np.float64) / (s_in * s_w))
    bc = (b.astype(np.float64) - corr).astype(F32)   # the float bias
    bq1 = lround(bc.astype(np.float64) / (s_in * s_w))

    def mean_error(bq):
        yq = int8_dense(hold, wq, s_w, bq, s_in, zp_in, s_out, zp_out)
        yf = hold.astype(np.float64) @ w64.T + b
        return float(np.abs((yq - yf).mean(axis=0)).mean())

    before, after = mean_error(bq0), mean_error(bq1)
    assert after < before / 3, (before, after)
    ref = os.path.join(folder, "ref")
    save(ref, "correction", corr)
    save(ref, "bias_q0", bq0, np.int32)
    save(ref, "bias_q", bq1, np.int32)
    with open(os.path.join(ref, "mean_error.txt"), "w") as f:
        f.write("%.9g %.9g\n" % (before, after))
    print("bias_correct: mean |mean error| %.6g -> %.6g" % (before, after))


def correct_conv(gen):
    folder = os.path.join(OUT, "correct_conv")
    c1 = torch.nn.Conv2d(3, 4, 3, stride=2, padding=1)
    c2 = torch.nn.Conv2d(4, 4, 3, padding=1, groups=2)
    with torch.no_grad():
        for c in (c1, c2):
            c.weight.normal_(0.0, 0.3, generator=gen)
            c.bias.uniform_(-0.1, 0.1, generator=gen)
    for name, c in (("conv1", c1), ("conv2", c2)):
        save(folder, name + ".weight", c.weight.detach().numpy())
        save(folder, name + ".bias", c.bias.detach().numpy())
    x = (torch.rand(16, 3, 7, 6, generator=gen) + 0.5).numpy()
    save(folder, "calib", x)
    ref = os.path.join(folder, "ref")
    # Per output channel, as quantize.weights: per_channel makes them;
    # the expected error by running the convolution with W_q - W (no
    # bias) on the float input, averaged over samples and positions:
    # independent of the plugin's per-tap means.
    x64 = torch.from_numpy(x).double()
    with torch.no_grad():
        h = torch.relu(torch.nn.functional.conv2d(
            x64, c1.weight.double(), c1.bias.double(), stride=2,
            padding=1))
    for name, c, inp, kw in (("conv1", c1, x64, {"stride": 2, "padding": 1}),
                             ("conv2", c2, h, {"padding": 1, "groups": 2})):
        w = c.weight.detach().double().numpy()
        s = np.abs(w).reshape(w.shape[0], -1).max(axis=1) / 127.0
        wq = np.clip(lround(w / s[:, None, None, None]), -127, 127)
        dw = torch.from_numpy(wq * s[:, None, None, None] - w)
        e = torch.nn.functional.conv2d(inp, dw, None, **kw)
        save(ref, name + ".correction",
             e.mean(dim=(0, 2, 3)).detach().numpy())


# --- bias_correct, empirical mode ------------------------------------------

TIE_MARGIN = 1e-4


def fake_quant(x, scale, zp, exact=False):
    """The int8 model's activation x, in float: QUANT.md's quantization
    (lround, clamp to [-128, 127]) and back. Unless x is exact (float32
    data, divided in float64 here as in the core), checks that no
    unclamped value is within TIE_MARGIN steps of a rounding tie."""
    v = np.asarray(x, dtype=np.float64) / scale
    q = lround(v) + zp
    inside = (q > -128) & (q < 127)
    frac = np.abs(np.abs(v - np.trunc(v)) - 0.5)
    assert exact or not inside.any() or \
        frac[inside].min() > TIE_MARGIN, frac[inside].min()
    return scale * (np.clip(q, -128, 127) - zp)


def quantized_weights(w, per_channel):
    """QUANT.md's int8 weights, dequantized (per tensor, or per output
    channel)."""
    w = np.asarray(w, dtype=np.float64)
    flat = w.reshape(w.shape[0], -1)
    if per_channel:
        s = np.abs(flat).max(axis=1, keepdims=True) / 127.0
    else:
        s = np.full((w.shape[0], 1), np.abs(flat).max() / 127.0)
    return (np.clip(lround(flat / s), -127, 127) * s).reshape(w.shape)


def corrected(b, corr):
    """The float bias the plugin leaves: b + (float)(-corr), in float32."""
    return (b.astype(F32) + (-corr).astype(F32)).astype(F32)


def correct_mlp(rng):
    folder = os.path.join(OUT, "correct_mlp")
    dims = [(8, 6), (6, 8), (3, 6)]
    ws = [rng.normal(0.0, 0.5, d).astype(F32) for d in dims]
    bs = [rng.uniform(-0.2, 0.2, d[0]).astype(F32) for d in dims]
    calib = rng.uniform(-0.5, 1.5, (256, 6)).astype(F32)
    hold = rng.uniform(-0.5, 1.5, (256, 6)).astype(F32)
    for i, (w, b) in enumerate(zip(ws, bs)):
        save(folder, "fc%d.weight" % (i + 1), w)
        save(folder, "fc%d.bias" % (i + 1), b)
    save(folder, "calib", calib)
    save(folder, "holdout", hold)

    # The float model in float32, as the interpreter runs it: its ranges.
    x = calib
    h1 = np.maximum(x @ ws[0].T + bs[0], 0).astype(F32)
    h2 = np.maximum(h1 @ ws[1].T + bs[1], 0).astype(F32)
    s_x = affine(float(x.min()), float(x.max()))
    hi = float(F32(np.percentile(h1.astype(np.float64), 90)))
    s_h1 = affine(0.0, hi)
    s_h2 = affine(float(h2.min()), float(h2.max()))
    assert (h1 > hi).mean() > 0.05           # a tenth of h1 is clipped
    # Float inputs of each layer, float64 means.
    xs = [x, h1, h2]
    mean = [a.astype(np.float64).mean(axis=0) for a in xs]
    wq = [quantized_weights(w, False) for w in ws]
    w64 = [w.astype(np.float64) for w in ws]
    ref = os.path.join(folder, "ref")
    for i in range(3):
        save(ref, "fc%d.weights" % (i + 1), (wq[i] - w64[i]) @ mean[i])
    # The int8 model, layer by layer, each bias corrected before the next
    # layer's input is measured.
    xt = fake_quant(x, *s_x, exact=True)
    scales = [s_h1, s_h2]
    for i in range(3):
        corr = wq[i] @ xt.mean(axis=0) - w64[i] @ mean[i]
        save(ref, "fc%d.empirical" % (i + 1), corr)
        if i < 2:
            b = corrected(bs[i], corr).astype(np.float64)
            xt = fake_quant(np.maximum(xt @ wq[i].T + b, 0), *scales[i])
        print("bias_correct fc%d: weights %s, empirical %s" % (
            i + 1, np.round((wq[i] - w64[i]) @ mean[i], 5),
            np.round(corr, 5)))
    # For the mean output error with and without the correction: enough
    # samples that the means are not sampling noise.
    save(folder, "calib_large", rng.uniform(-0.5, 1.5, (4096, 6)))
    save(folder, "holdout_large", rng.uniform(-0.5, 1.5, (4096, 6)))


def correct_conv_empirical():
    folder = os.path.join(OUT, "correct_conv")
    load = lambda n: torch.from_numpy(  # noqa: E731
        np.load(os.path.join(folder, n + ".npy")).astype(np.float64))
    w1, b1, w2, b2 = (load(n) for n in ("conv1.weight", "conv1.bias",
                                        "conv2.weight", "conv2.bias"))
    x32 = np.load(os.path.join(folder, "calib.npy"))
    conv = torch.nn.functional.conv2d
    k1, k2 = {"stride": 2, "padding": 1}, {"padding": 1, "groups": 2}
    # Ranges from the float32 model (minmax).
    with torch.no_grad():
        a1 = torch.relu(conv(torch.from_numpy(x32), w1.float(), b1.float(),
                             **k1))
    s_x = affine(float(x32.min()), float(x32.max()))
    s_a1 = affine(float(a1.min()), float(a1.max()))
    x = torch.from_numpy(x32).double()
    a1 = a1.double()
    q1 = torch.from_numpy(quantized_weights(w1.numpy(), True))
    q2 = torch.from_numpy(quantized_weights(w2.numpy(), True))
    ref = os.path.join(folder, "ref")
    xt = torch.from_numpy(fake_quant(x.numpy(), *s_x, exact=True))
    with torch.no_grad():
        c1 = (conv(xt, q1, None, **k1) - conv(x, w1, None, **k1)).mean(
            dim=(0, 2, 3))
        b1c = torch.from_numpy(corrected(b1.numpy(), c1.numpy())).double()
        at = torch.from_numpy(fake_quant(
            torch.relu(conv(xt, q1, b1c, **k1)).numpy(), *s_a1))
        c2 = (conv(at, q2, None, **k2) - conv(a1, w2, None, **k2)).mean(
            dim=(0, 2, 3))
    save(ref, "conv1.empirical", c1.numpy())
    save(ref, "conv2.empirical", c2.numpy())


def cle(gen):
    folder = os.path.join(OUT, "cle")
    save(folder, "calib", torch.randn(256, 4, generator=gen).numpy())
    save(folder, "holdout", torch.randn(256, 4, generator=gen).numpy())


def main():
    rng = np.random.default_rng(20190611)
    absorb(rng)
    correct(rng)
    cle(torch.Generator().manual_seed(6))
    correct_conv(torch.Generator().manual_seed(42))
    absorb_conv(torch.Generator().manual_seed(7))
    correct_mlp(np.random.default_rng(20191029))
    correct_conv_empirical()


if __name__ == "__main__":
    main()
