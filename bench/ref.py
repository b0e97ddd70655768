#!/usr/bin/python3
"""tmpipe bench: the same forward pass in numpy and in PyTorch (CPU).

    OPENBLAS_NUM_THREADS=1 /usr/bin/python3 bench/ref.py ENGINE MODEL_DIR \
        [-r RUNS] [-b BATCH] [--check tmpipe.f32]

ENGINE is numpy or torch. MODEL_DIR is one folder written by gen_models.py
(weights/, input.npy, meta.txt). Both run on one thread: OpenBLAS through
OPENBLAS_NUM_THREADS (set here too, before numpy loads, when the caller
did not), torch through set_num_threads(1). Prints, as bench/run parses:

    info <engine> ...
    result <engine> <model> best=<samples/s> median=<samples/s> runs=R ...
    check <engine> <model> maxabs=<max |out - tmpipe|> maxref=<max |tmpipe|>
"""
import argparse
import os
import statistics
import sys
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402  (after the thread settings)


def load(folder):
    meta = {}
    with open(os.path.join(folder, "meta.txt")) as f:
        for line in f:
            key, _, value = line.strip().partition(" ")
            meta[key] = value
    wdir = os.path.join(folder, "weights")
    weights = {f[:-4]: np.load(os.path.join(wdir, f))
               for f in sorted(os.listdir(wdir)) if f.endswith(".npy")}
    x = np.load(os.path.join(folder, "input.npy"))
    return meta, weights, x


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
            h.openblas_get_config.restype = ctypes.c_char_p
            return "%s core=%s (%s)" % (h.openblas_get_config().decode(),
                                        h.openblas_get_corename().decode(),
                                        lib)
        except (OSError, AttributeError):
            continue
    return "not OpenBLAS: %s" % ", ".join(libs)


# --- numpy ---------------------------------------------------------------

def np_dense(x, w, b):
    return x @ w.T + b


def np_conv3x3(x, w, b):
    """Conv2d, 3x3, stride 1, padding 1, NCHW: im2col and one matmul."""
    n, c, h, wd = x.shape
    o = w.shape[0]
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    win = np.lib.stride_tricks.sliding_window_view(xp, (3, 3), axis=(2, 3))
    # win: [n, c, h, w, 3, 3] -> cols [n*h*w, c*3*3]
    cols = win.transpose(0, 2, 3, 1, 4, 5).reshape(n * h * wd, c * 9)
    y = cols @ w.reshape(o, c * 9).T + b
    return y.reshape(n, h, wd, o).transpose(0, 3, 1, 2)


def np_maxpool2(x):
    n, c, h, w = x.shape
    return x.reshape(n, c, h // 2, 2, w // 2, 2).max(axis=(3, 5))


def numpy_forward(name, wt):
    if name == "mlp":
        def f(x):
            h = np.maximum(np_dense(x, wt["fc1.weight"], wt["fc1.bias"]), 0)
            h = np.maximum(np_dense(h, wt["fc2.weight"], wt["fc2.bias"]), 0)
            return np_dense(h, wt["fc3.weight"], wt["fc3.bias"])
    else:
        def f(x):
            h = np.maximum(np_conv3x3(x, wt["conv1.weight"],
                                      wt["conv1.bias"]), 0)
            h = np_maxpool2(h)
            h = np.maximum(np_conv3x3(h, wt["conv2.weight"],
                                      wt["conv2.bias"]), 0)
            h = np_maxpool2(h)
            return np_dense(h.reshape(h.shape[0], -1), wt["fc.weight"],
                            wt["fc.bias"])
    return f


# --- torch ---------------------------------------------------------------

def torch_forward(name, wt):
    import torch
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import gen_models

    torch.set_num_threads(1)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass  # already set once in this process
    model = {"mlp": gen_models.mlp, "cnn": gen_models.cnn}[name]().eval()
    model.load_state_dict({k: torch.from_numpy(v) for k, v in wt.items()})

    def f(x):
        with torch.inference_mode():
            return model(torch.from_numpy(x)).numpy()
    info = "threads=%d interop=%d mkldnn=%s" % (
        torch.get_num_threads(), torch.get_num_interop_threads(),
        torch.backends.mkldnn.is_available())
    return f, info


def run_all(f, x, batch):
    return np.concatenate([f(x[s:s + batch])
                           for s in range(0, len(x), batch)])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("engine", choices=["numpy", "torch"])
    ap.add_argument("folder")
    ap.add_argument("-r", "--runs", type=int, default=10)
    ap.add_argument("-b", "--batch", type=int, default=100)
    ap.add_argument("--check", help="tmpipe's outputs (raw float32)")
    a = ap.parse_args()

    meta, wt, x = load(a.folder)
    name = meta["name"]
    if a.engine == "numpy":
        f = numpy_forward(name, wt)
        print("info numpy %s threads=%s openblas %s" % (
            np.__version__, os.environ.get("OPENBLAS_NUM_THREADS"),
            blas_core()))
    else:
        import torch
        f, info = torch_forward(name, wt)
        print("info torch %s %s" % (torch.__version__, info))

    y = run_all(f, x, a.batch)  # warm-up
    rates = []
    for _ in range(a.runs):
        t0 = time.perf_counter()
        y = run_all(f, x, a.batch)
        rates.append(len(x) / (time.perf_counter() - t0))
    print("result %s %s best=%.1f median=%.1f runs=%d samples=%d batch=%d"
          % (a.engine, name, max(rates), statistics.median(rates), a.runs,
             len(x), a.batch))
    if a.check:
        ref = np.fromfile(a.check, dtype=np.float32).reshape(y.shape)
        print("check %s %s maxabs=%.3g maxref=%.3g" % (
            a.engine, name, float(np.max(np.abs(y - ref))),
            float(np.max(np.abs(ref)))))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
