#!/usr/bin/python3
"""tmpipe bench/calib: the same calibration in numpy and in PyTorch.

    /usr/bin/python3 bench/observers/ref.py ENGINE OBSERVER DIR N [DATA]

DIR is the folder bench/observers/gen.py wrote (weights/, calib_<N>.npy);
DATA is another copy of calib_<N>.npy to read instead.
One process does one calibration, so bench/calib can time it and take its
peak RSS from outside. Everything runs on one thread: OpenBLAS through
OPENBLAS_NUM_THREADS=1 (set here too, before numpy loads, when the caller
did not), torch through set_num_threads(1).

The data is read from calib_<N>.npy a batch of 100 rows at a time (the
batch of the tmpipe pipelines), with numpy.fromfile, and goes through the
float forward pass of the MLP (x @ W.T + b, ReLU); the activation tensors
are tmpipe's: input, fc1, h1, fc2, h2, fc3.

ENGINE numpy, OBSERVER:
  minmax         running min and max per tensor (streaming; exact)
  moving_minmax  PyTorch's moving average of each batch's min and max,
                 averaging constant 0.01, in float32 (streaming)
  percentile     stores every value of every tensor (N x size arrays),
                 then numpy.percentile(values, [0.05, 99.95])
  kl             stores every value of every tensor, then the entropy
                 calibration of plugins/kl (its defaults: 2048 bins over
                 [0, max |x|], 128 levels, symmetric), straightforwardly:
                 the histogram with numpy.bincount, then for every T a
                 vectorized KL(P || Q) (kl_sweep below; the definition is
                 the one tests/gen/observers_ref.py's kl_curve spells
                 out with a loop over the 128 groups; with
                 BENCH_KL_SWEEP=loop in the environment, kl_curve itself
                 is used, as MXNet's and TVM's calibrators do it)
ENGINE torch, OBSERVER (torch.ao.quantization, default arguments, fed
every batch of every tensor, as PyTorch's calibration does):
  minmax         MinMaxObserver
  moving_minmax  MovingAverageMinMaxObserver (averaging_constant 0.01)
  histogram      HistogramObserver (2048 bins; calculate_qparams runs its
                 L2 search: not the same algorithm as kl, the closest
                 PyTorch has)

Prints, as bench/calib parses:

    info <engine> ...
    work <engine> <observer> <N> total=<s> read=<s> forward=<s>
         observe=<s> finish=<s>
    range <engine> <observer> <N> <tensor> <lo> <hi>
    sweep <engine> kl <N> <tensor> ms=<the KL sweep of that tensor>
"""
import os
import sys
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402  (after the thread settings)

BATCH = 100
TENSORS = ["input", "fc1", "h1", "fc2", "h2", "fc3"]
PCT_LO, PCT_HI = 0.05, 99.95      # plugins/percentile defaults
KL_BINS, KL_LEVELS = 2048, 128    # plugins/kl defaults
KL_EPS, KL_TIE = 1e-4, 1e-12      # plugins/kl: smoothing, ties
MM_C = 0.01                       # plugins/moving_minmax default


def batches(path, batch):
    """The rows of a C-order .npy file, batch at a time (streamed)."""
    with open(path, "rb") as f:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
        else:
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
        if fortran or len(shape) != 2:
            sys.exit("ref.py: %s: want a 2-D C-order array" % path)
        n, per = shape
        for s in range(0, n, batch):
            b = min(batch, n - s)
            x = np.fromfile(f, dtype=dtype, count=b * per)
            yield x.reshape(b, per).astype(np.float32, copy=False)


def load_weights(folder):
    w = os.path.join(folder, "weights")
    return [(np.load(os.path.join(w, "%s.weight.npy" % k)),
             np.load(os.path.join(w, "%s.bias.npy" % k)))
            for k in ("fc1", "fc2", "fc3")]


def blas_core():
    """The OpenBLAS kernel numpy runs, asked of the library it loaded."""
    import ctypes
    try:
        with open("/proc/self/maps") as f:
            libs = sorted({line.split()[-1] for line in f
                           if "blas" in line and ".so" in line})
    except OSError:
        return "unknown"
    for lib in libs:
        try:
            h = ctypes.CDLL(lib)
            h.openblas_get_corename.restype = ctypes.c_char_p
            return "core=%s" % h.openblas_get_corename().decode()
        except (OSError, AttributeError):
            continue
    return "not OpenBLAS: %s" % ", ".join(libs)


class Clock:
    def __init__(self):
        self.t = {}

    def add(self, key, t0):
        t1 = time.perf_counter()
        self.t[key] = self.t.get(key, 0.0) + t1 - t0
        return t1


# --- numpy -------------------------------------------------------------------

def np_forward(x, layers):
    (w1, b1), (w2, b2), (w3, b3) = layers
    fc1 = x @ w1.T + b1
    h1 = np.maximum(fc1, np.float32(0))
    fc2 = h1 @ w2.T + b2
    h2 = np.maximum(fc2, np.float32(0))
    fc3 = h2 @ w3.T + b3
    return [x, fc1, h1, fc2, h2, fc3]


def kl_histogram(a, bins):
    """plugins/kl's histogram of |x|: bin floor(|x| * (bins / edge)), in
    double, the last bin also |x| = edge. Returns (counts, edge)."""
    v = np.abs(a, dtype=np.float64).ravel()
    edge = float(v.max())
    if edge == 0.0:
        return None, 0.0
    idx = (v * (bins / edge)).astype(np.int64)
    np.minimum(idx, bins - 1, out=idx)
    return np.bincount(idx, minlength=bins).astype(np.float64), edge


def kl_sweep(h, levels):
    """The T in levels..bins of least KL(P || Q), ties to the smallest:
    tests/gen/observers_ref.py's kl_curve, each T vectorized over its
    bins and groups."""
    bins = len(h)
    curve = np.full(bins + 1, np.inf)
    tail = np.concatenate([np.cumsum(h[::-1])[::-1], [0.0]])  # h[T:].sum()
    for T in range(levels, bins + 1):
        P = h[:T].copy()
        P[T - 1] += tail[T]
        m = T // levels
        starts = np.arange(levels) * m
        nz = P != 0
        # Q: the unclipped h[:T] in `levels` groups of m bins (the last
        # one up to T), each group's mass spread over its bins where P
        # is nonzero.
        group_mass = np.add.reduceat(h[:T], starts)
        group_nz = np.add.reduceat(nz.astype(np.int64), starts)
        per_bin = np.divide(group_mass, group_nz, out=np.zeros(levels),
                            where=group_nz > 0)
        gid = np.minimum(np.arange(T) // m, levels - 1)
        Q = np.where(nz, per_bin[gid], 0.0)
        qsum = Q.sum()
        if qsum == 0.0:
            continue        # Q says nothing: never chosen
        p = P[nz] / P.sum()
        q = (1.0 - KL_EPS) * (Q[nz] / qsum) + KL_EPS / nz.sum()
        curve[T] = np.sum(p * np.log(p / q))
    best = curve.min()
    return int(np.flatnonzero(curve <= best + KL_TIE)[0])


def kl_sweep_loop(h, levels):
    """The same choice with tests/gen/observers_ref.py's kl_curve."""
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(
        os.path.dirname(os.path.abspath(__file__)))), "tests", "gen"))
    sys.dont_write_bytecode = True  # no __pycache__ in tests/gen
    import observers_ref
    curve = observers_ref.kl_curve(h, levels)
    best = curve.min()
    return int(np.flatnonzero(curve <= best + KL_TIE)[0])


def run_numpy(observer, folder, n, path, clock):
    layers = load_weights(folder)
    sweep = kl_sweep_loop if os.environ.get("BENCH_KL_SWEEP") == "loop" \
        else kl_sweep
    store = None
    lo = [None] * len(TENSORS)
    hi = [None] * len(TENSORS)
    row = 0
    c = np.float32(MM_C)
    t = time.perf_counter()
    for x in batches(path, BATCH):
        t = clock.add("read", t)
        acts = np_forward(x, layers)
        t = clock.add("forward", t)
        b = x.shape[0]
        if observer in ("percentile", "kl"):
            if store is None:   # every value of every tensor, all N rows
                store = [np.empty((n, a.shape[1]), np.float32)
                         for a in acts]
            for s, a in zip(store, acts):
                s[row:row + b] = a
        else:
            for i, a in enumerate(acts):
                bmin, bmax = a.min(), a.max()
                if lo[i] is None:
                    lo[i], hi[i] = bmin, bmax
                elif observer == "minmax":
                    lo[i], hi[i] = min(lo[i], bmin), max(hi[i], bmax)
                else:   # moving_minmax, float32 as PyTorch computes it
                    lo[i] = np.float32(lo[i] + c * np.float32(bmin - lo[i]))
                    hi[i] = np.float32(hi[i] + c * np.float32(bmax - hi[i]))
        row += b
        t = clock.add("observe", t)
    sweeps = []
    if observer == "percentile":
        for i, s in enumerate(store):
            lo[i], hi[i] = np.percentile(s, [PCT_LO, PCT_HI])
    elif observer == "kl":
        for i, s in enumerate(store):
            h, edge = kl_histogram(s, KL_BINS)
            if h is None:
                lo[i] = hi[i] = 0.0
                continue
            t0 = time.perf_counter()
            T = sweep(h, KL_LEVELS)
            sweeps.append((TENSORS[i], time.perf_counter() - t0))
            hi[i] = np.float32((T + 0.5) * edge / KL_BINS)
            lo[i] = -hi[i]
    clock.add("finish", t)
    return lo, hi, sweeps


# --- torch -------------------------------------------------------------------

def run_torch(observer, folder, n, path, clock):
    import torch
    import torch.nn.functional as F
    try:
        from torch.ao import quantization as tq
    except ImportError:             # torch < 1.10
        from torch import quantization as tq

    torch.set_num_threads(1)
    make = {"minmax": tq.MinMaxObserver,
            "moving_minmax": lambda: tq.MovingAverageMinMaxObserver(
                averaging_constant=MM_C),
            "histogram": tq.HistogramObserver}[observer]
    obs = [make() for _ in TENSORS]
    layers = [(torch.from_numpy(w), torch.from_numpy(b))
              for w, b in load_weights(folder)]
    (w1, b1), (w2, b2), (w3, b3) = layers
    with torch.no_grad():
        t = time.perf_counter()
        for xb in batches(path, BATCH):
            x = torch.from_numpy(xb)
            t = clock.add("read", t)
            fc1 = F.linear(x, w1, b1)
            h1 = torch.relu(fc1)
            fc2 = F.linear(h1, w2, b2)
            h2 = torch.relu(fc2)
            fc3 = F.linear(h2, w3, b3)
            t = clock.add("forward", t)
            for o, a in zip(obs, (x, fc1, h1, fc2, h2, fc3)):
                o(a)
            t = clock.add("observe", t)
        lo, hi = [], []
        for o in obs:
            if observer == "histogram":
                # The range its L2 search picked, from the qparams.
                scale, zp = o.calculate_qparams()
                s, z = float(scale), int(zp)
                lo.append((o.quant_min - z) * s)
                hi.append((o.quant_max - z) * s)
            else:
                lo.append(float(o.min_val))
                hi.append(float(o.max_val))
        clock.add("finish", t)
    return lo, hi, []


def main():
    if len(sys.argv) not in (5, 6):
        sys.exit("usage: ref.py numpy|torch OBSERVER DIR N [DATA]")
    engine, observer, folder, n = sys.argv[1:5]
    n = int(n)
    path = sys.argv[5] if len(sys.argv) == 6 else os.path.join(
        folder, "calib_%d.npy" % n)
    valid = {"numpy": ("minmax", "moving_minmax", "percentile", "kl"),
             "torch": ("minmax", "moving_minmax", "histogram")}
    if observer not in valid.get(engine, ()):
        sys.exit("ref.py: engine %s has no observer %s" % (engine, observer))
    if engine == "torch":
        import torch    # before the clock: "total" is the calibration
        torch.set_num_threads(1)
        print("info torch %s, %d thread" % (torch.__version__,
                                            torch.get_num_threads()))
    clock = Clock()
    t0 = time.perf_counter()
    if engine == "numpy":
        print("info numpy %s, OpenBLAS %s" % (np.__version__, blas_core()))
        lo, hi, sweeps = run_numpy(observer, folder, n, path, clock)
    else:
        lo, hi, sweeps = run_torch(observer, folder, n, path, clock)
    total = time.perf_counter() - t0
    print("work %s %s %d total=%.4f %s" % (
        engine, observer, n, total, " ".join(
            "%s=%.4f" % (k, clock.t.get(k, 0.0))
            for k in ("read", "forward", "observe", "finish"))))
    for name, a, b in zip(TENSORS, lo, hi):
        print("range %s %s %d %s %.9g %.9g" % (engine, observer, n, name,
                                               float(a), float(b)))
    for name, s in sweeps:
        print("sweep %s kl %d %s ms=%.3f" % (engine, n, name, s * 1e3))


if __name__ == "__main__":
    main()
