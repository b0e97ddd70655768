#!/usr/bin/python3
"""Writes the known answers of tests/unit/test_observers.c into
tests/data/observers/.

Run with Debian's /usr/bin/python3 (it sees python3-numpy and python3-torch):

    /usr/bin/python3 tests/gen/observers_ref.py

The outputs are committed, so `make check` needs no Python. Inputs are raw
little-endian float32 files (<name>.bin) from a seeded generator; the
answers are in expected.txt, one case a line, numbers as %.17g:

    percentile <file> <params> <want_lo> <want_hi>
        numpy.percentile (method 'linear', numpy's default) of the file's
        values in float64 at the percentages lo and hi. <params> is the
        observer's parameters as a YAML flow map without spaces, e.g.
        {lo:1,hi:99,bins:64,refine:false}; the test checks the observer's
        answer within its documented bound.

    kl <file> <params> <bins> <levels> <nonneg> <edge> <T> <kl_min>
       <kl_at_levels>
        The entropy calibration's choice of T (the kept bins) on that
        file, computed here straightforwardly: for every T, P and Q built
        as explicit arrays, smoothed, KL summed over P's support (see
        kl_curve). nonneg is 1 when the histogram is of x (mode
        nonnegative, or auto on data without negatives), 0 when of |x|;
        edge is max x or max |x|. The test expects the observer's
        threshold to be exactly (T + 0.5) * edge / bins in double, rounded
        to float. The two KL values (at T, and at T = levels) are for
        whoever reads the file.

    kl_asym <file> <params> <bins> <levels> <edge> <T> <min> <max>
        Mode asymmetric (ONNX Runtime's entropy calibrator): T chosen on
        the histogram of |x| as for kl, and the test expects the range
        (-threshold, threshold) clipped to the file's [min, max], with a
        zero point (not symmetric).

    moving_minmax <file> <batch> <params> <min_1> <max_1> ... <min_k> <max_k>
        torch.ao.quantization.MovingAverageMinMaxObserver's min_val and
        max_val after each batch of <batch> values (float32, exact).

The histogram here is a definition shared with the observer, not a port of
it: bin i holds the values v = |x| (or x) with floor(v * (bins / edge)) = i,
in float64, the last bin also holding v = edge.
"""

import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "data", "observers")

EPS = 1e-4        # the uniform mass mixed into Q over P's support
TIE = 1e-12       # KL values within this of the minimum are ties;
                  # ties go to the smallest T


def write_bin(name, x):
    x = np.ascontiguousarray(x, dtype="<f4")
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(x.tobytes())
    return x


def g(v):
    return "%.17g" % float(v)


# --- percentile ------------------------------------------------------------

def percentile_cases(rng):
    data = {
        "pct_uniform.bin": rng.uniform(-3.0, 5.0, 4096),
        "pct_normal.bin": rng.normal(0.5, 2.0, 4096),
        # Heavy tails: the range is hundreds of times the 99.95th
        # percentile, so a plain histogram over [min, max] is coarse there.
        "pct_student.bin": rng.standard_t(1.5, 8192),
        "pct_lognormal.bin": rng.lognormal(0.0, 1.0, 4096),
        "pct_constant.bin": np.full(256, 0.75),
    }
    cases = [
        ("pct_uniform.bin", "{}", 0.05, 99.95),
        ("pct_uniform.bin", "{lo:1,hi:99}", 1.0, 99.0),
        ("pct_normal.bin", "{}", 0.05, 99.95),
        ("pct_normal.bin", "{lo:25,hi:75}", 25.0, 75.0),
        ("pct_normal.bin", "{lo:0.001,hi:99.999}", 0.001, 99.999),
        ("pct_normal.bin", "{bins:64}", 0.05, 99.95),
        ("pct_normal.bin", "{bins:64,refine:false}", 0.05, 99.95),
        # Coarse bins, percentiles inside crowded bins: the sub-bin
        # estimate itself, against its bound R / bins^2.
        ("pct_normal.bin", "{lo:25,hi:75,bins:16}", 25.0, 75.0),
        ("pct_uniform.bin", "{lo:30,hi:60.5,bins:16}", 30.0, 60.5),
        ("pct_student.bin", "{}", 0.05, 99.95),
        ("pct_student.bin", "{refine:false}", 0.05, 99.95),
        ("pct_student.bin", "{lo:0,hi:100}", 0.0, 100.0),
        ("pct_lognormal.bin", "{}", 0.05, 99.95),
        ("pct_lognormal.bin", "{lo:10,hi:90.5}", 10.0, 90.5),
        ("pct_constant.bin", "{}", 0.05, 99.95),
    ]
    lines = []
    for name, x in data.items():
        data[name] = write_bin(name, x)
    for name, params, lo, hi in cases:
        x = data[name].astype(np.float64)
        want = np.percentile(x, [lo, hi])
        lines.append("percentile %s %s %s %s" % (name, params, g(want[0]),
                                                 g(want[1])))
    return lines


# --- kl --------------------------------------------------------------------

def histogram(v, bins, edge):
    """Counts of v (float64, >= 0) in bins equal bins over [0, edge]."""
    idx = np.floor(v * (bins / np.float64(edge))).astype(np.int64)
    idx = np.clip(idx, 0, bins - 1)
    return np.bincount(idx, minlength=bins).astype(np.float64)


def kl_curve(h, levels):
    """KL(P || Q) for every T in levels..bins (inf elsewhere), straight
    from the definition (QUANT.md, Observers: kl)."""
    bins = len(h)
    out = np.full(bins + 1, np.inf)
    for T in range(levels, bins + 1):
        # P: the first T bins, the outliers folded into the last one.
        P = h[:T].copy()
        P[T - 1] += h[T:].sum()
        # Q: the unclipped first T bins merged into `levels` groups of
        # T // levels bins, the last group taking the remainder, each
        # group's mass spread evenly over its bins where P is nonzero.
        m = T // levels
        Q = np.zeros(T)
        for j in range(levels):
            a = j * m
            b = T if j == levels - 1 else a + m
            nz = P[a:b] != 0
            if nz.any():
                seg = Q[a:b]
                seg[nz] = h[a:b].sum() / nz.sum()
        if Q.sum() == 0:
            continue        # Q says nothing: never chosen
        p = P / P.sum()
        q = Q / Q.sum()
        # Smoothing: EPS of a uniform distribution over P's support mixed
        # into Q, so a bin with p > 0 and q = 0 costs p log(p Z / EPS).
        s = p > 0
        qs = (1.0 - EPS) * q[s] + EPS / s.sum()
        out[T] = np.sum(p[s] * np.log(p[s] / qs))
    return out


def kl_choice(x, bins, levels, nonnegative):
    x = x.astype(np.float64)
    v = x if nonnegative else np.abs(x)
    edge = v.max()
    curve = kl_curve(histogram(v, bins, edge), levels)
    best = curve.min()
    T = int(np.flatnonzero(curve <= best + TIE)[0])
    # The test is only meaningful when no other T is a near tie that
    # rounding could flip.
    others = curve[np.isfinite(curve) & (curve > best + TIE)]
    assert others.size == 0 or others.min() > best + 1e-8, (T, best)
    return T, best, curve[levels], edge


def kl_cases(rng):
    # A bulk (normal, sigma 2, reaching about +-8) and six outliers at
    # +-40: absmax / 16 = 2.5 cuts into the bulk, and the right threshold
    # is near its edge, hundreds of bins above T = 128.
    bulk = rng.normal(0.0, 2.0, 16384)
    bulk[:6] = [40.0, -40.0, 40.0, 40.0, -40.0, 40.0]
    # After a ReLU: half zeros, a bulk up to about 6, outliers at 30.
    relu = np.maximum(rng.normal(0.0, 1.5, 8192), 0.0)
    relu[:4] = 30.0
    bulk = write_bin("kl_bulk.bin", bulk)
    relu = write_bin("kl_relu.bin", relu)
    cases = [
        ("kl_bulk.bin", bulk, "{}", 2048, 128, False),
        ("kl_bulk.bin", bulk, "{bins:1000,levels:60}", 1000, 60, False),
        ("kl_bulk.bin", bulk, "{mode:auto}", 2048, 128, False),
        ("kl_relu.bin", relu, "{mode:nonnegative}", 2048, 128, True),
        ("kl_relu.bin", relu, "{mode:auto}", 2048, 128, True),
        ("kl_relu.bin", relu, "{}", 2048, 128, False),
    ]
    lines = []
    for name, x, params, bins, levels, nonneg in cases:
        T, best, at_levels, edge = kl_choice(x, bins, levels, nonneg)
        print("kl %s %s: T %d (threshold %.6g, edge / 16 = %.6g), KL %.6g,"
              " KL at T = levels %.6g" % (name, params, T,
                                          (T + 0.5) * edge / bins,
                                          edge / 16, best, at_levels),
              file=sys.stderr)
        lines.append("kl %s %s %d %d %d %s %d %s %s" %
                     (name, params, bins, levels, int(nonneg), g(edge), T,
                      g(best), g(at_levels)))
    return lines


def kl_asym_cases():
    # A logit-like tensor, mostly negative: a bulk around -1.5 reaching
    # about +1.5 above zero, and four outliers at -30 that entropy
    # calibration clips. The threshold lands inside the bulk's negative
    # side and beyond its positive end, so both clips act: the range is
    # [-threshold, max]. Its own generator: the other cases' data stay
    # what they were.
    rng = np.random.default_rng(20261127)
    skew = rng.normal(-1.5, 1.0, 8192)
    skew[:4] = -30.0
    skew = write_bin("kl_skew.bin", skew)
    relu = np.fromfile(os.path.join(OUT, "kl_relu.bin"), dtype="<f4")
    bulk = np.fromfile(os.path.join(OUT, "kl_bulk.bin"), dtype="<f4")
    lines = []
    for name, x in (("kl_skew.bin", skew), ("kl_bulk.bin", bulk),
                    ("kl_relu.bin", relu)):
        T, best, _, edge = kl_choice(x, 2048, 128, False)
        thr = np.float32((T + 0.5) * edge / 2048)
        lo, hi = max(-thr, x.min()), min(thr, x.max())
        print("kl_asym %s: T %d, threshold %.6g, range [%.6g, %.6g] "
              "(min %.6g, max %.6g)" % (name, T, thr, lo, hi, x.min(),
                                        x.max()), file=sys.stderr)
        lines.append("kl_asym %s {mode:asymmetric} 2048 128 %s %d %s %s" %
                     (name, g(edge), T, g(x.min()), g(x.max())))
    return lines


# --- moving_minmax ---------------------------------------------------------

def moving_minmax_cases(rng):
    import torch
    from torch.ao.quantization import MovingAverageMinMaxObserver

    batch = 64
    # Drifting batches, so the averages move in both directions.
    x = np.concatenate([rng.normal(0.3 * k, 1.0 + 0.5 * (k % 3), batch)
                        for k in range(8)])
    x = write_bin("mm_batches.bin", x)
    lines = []
    for c in (0.01, 0.25):
        obs = MovingAverageMinMaxObserver(averaging_constant=c)
        vals = []
        for k in range(len(x) // batch):
            obs(torch.from_numpy(x[k * batch:(k + 1) * batch].copy()))
            vals += [g(obs.min_val.item()), g(obs.max_val.item())]
        params = "{}" if c == 0.01 else "{averaging_constant:%s}" % c
        lines.append("moving_minmax mm_batches.bin %d %s %s" %
                     (batch, params, " ".join(vals)))
    return lines


def main():
    os.makedirs(OUT, exist_ok=True)
    rng = np.random.default_rng(20240607)
    lines = ["# written by tests/gen/observers_ref.py; do not edit"]
    lines += percentile_cases(rng)
    lines += kl_cases(rng)
    lines += moving_minmax_cases(rng)
    lines += kl_asym_cases()
    with open(os.path.join(OUT, "expected.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
