#!/usr/bin/python3
"""Exports a PyTorch module for tmpipe's npy frontend.

Writes <dir>/<key>.npy for every entry of the module's state_dict (the
layout the npy frontend reads without file names) and prints a matching
pipeline skeleton whose `layers:` list follows an nn.Sequential:

    /usr/bin/python3 tools/export_state_dict.py mynet.py:model weights \\
        --input-shape 3,32,32 > pipeline.yaml
    tmpipe run pipeline.yaml

MODULE is one of
    path/to/file.py:NAME     NAME in that file: an nn.Module, or a function
                             or class called without arguments to make one
    package.module:NAME      the same, imported from the Python path
    model.pt                 a whole module saved with torch.save(model)

The module is put in eval mode (BatchNorm uses its running statistics).
With --input-shape (one sample, without the batch), a forward pass on zeros
checks the model and the skeleton shows each layer's output shape.

Known module types: Linear, Conv2d, BatchNorm2d, ReLU, ReLU6, LeakyReLU,
Sigmoid, Tanh, Softmax, MaxPool2d, AvgPool2d, AdaptiveAvgPool2d(1),
Flatten; Dropout and Identity are skipped (identities in eval mode).
Nested nn.Sequential containers are flattened. A model that is not a chain
(residual adds, concatenations) gets its leaf modules chained in the order
they were registered, with a warning: edit the inputs and add the add or
concat layers by hand. An unknown module type becomes a comment in the
skeleton and makes the exit status 1.

Run with Debian's /usr/bin/python3, which sees python3-torch. The same
functions serve other scripts: save_state_dict(model, dir),
layer_yaml(name, module, inputs) and pipeline_yaml(model, dir_text, ...).
"""

import argparse
import importlib
import importlib.util
import os
import re
import sys

import numpy as np
import torch
from torch import nn


class ExportError(Exception):
    """A module the npy frontend cannot express."""


def save_state_dict(model, out_dir):
    """numpy.save of every state_dict entry as <out_dir>/<key>.npy.
    Returns the paths written, in state_dict order."""
    os.makedirs(out_dir, exist_ok=True)
    paths = []
    for key, value in model.state_dict().items():
        path = os.path.join(out_dir, key + ".npy")
        np.save(path, value.detach().cpu().numpy())
        paths.append(path)
    return paths


def _pair(v):
    return tuple(v) if isinstance(v, (tuple, list)) else (v, v)


def _ints(v):
    """[a] when both values agree, else [a, b]."""
    a, b = _pair(v)
    return [int(a)] if a == b else [int(a), int(b)]


def _flow(items):
    """A YAML flow map; keys and values need no quoting except names."""
    return "{" + ", ".join(f"{k}: {v}" for k, v in items) + "}"


_PLAIN = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]*$")


def _name(s):
    """A layer or tensor name as YAML: plain when it cannot be read as
    anything but a string, else quoted ("0", "1.weight")."""
    return s if _PLAIN.match(s) and s not in ("true", "false", "null",
                                               "yes", "no", "on", "off") \
        else '"' + s + '"'


def _yaml_list(v):
    return "[" + ", ".join(str(x) for x in v) + "]"


def _conv_padding(m):
    """Conv2d padding as the frontend's list: [p], [ph, pw] or (for
    padding='same' with an even kernel) [top, left, bottom, right]."""
    if m.padding_mode != "zeros":
        raise ExportError(f"padding_mode '{m.padding_mode}' is not "
                          "supported (only zeros)")
    if isinstance(m.padding, str):
        if m.padding == "valid":
            return None
        # 'same' (stride 1): PyTorch puts the odd pixel at the end.
        pads = []
        for k, d in zip(m.kernel_size, m.dilation):
            total = d * (k - 1)
            pads.append((total // 2, total - total // 2))
        (t, b), (l, r) = pads
        if t == b and l == r:
            return _ints((t, l)) if (t, l) != (0, 0) else None
        return [t, l, b, r]
    ph, pw = _pair(m.padding)
    return _ints((ph, pw)) if (ph, pw) != (0, 0) else None


def _pool_common(m, fields):
    if getattr(m, "ceil_mode", False):
        raise ExportError("ceil_mode=True is not supported")
    k = _pair(m.kernel_size)
    s = _pair(m.stride if m.stride is not None else m.kernel_size)
    fields.append(("kernel", _yaml_list(_ints(k))))
    if s != k:
        fields.append(("stride", _yaml_list(_ints(s))))
    if _pair(m.padding) != (0, 0):
        fields.append(("padding", _yaml_list(_ints(m.padding))))


def layer_fields(m):
    """(op, [(key, yaml value), ...]) for one module, or None to skip it.
    Raises ExportError for what the frontend cannot express."""
    if isinstance(m, (nn.Dropout, nn.Dropout2d, nn.Identity)):
        return None
    if isinstance(m, nn.Linear):
        return "dense", []
    if isinstance(m, nn.Conv2d):
        f = []
        if _pair(m.stride) != (1, 1):
            f.append(("stride", _yaml_list(_ints(m.stride))))
        pad = _conv_padding(m)
        if pad:
            f.append(("padding", _yaml_list(pad)))
        if _pair(m.dilation) != (1, 1):
            f.append(("dilation", _yaml_list(_ints(m.dilation))))
        if m.groups != 1:
            f.append(("groups", m.groups))
        return "conv2d", f
    if isinstance(m, nn.BatchNorm2d):
        if m.running_mean is None:
            raise ExportError("track_running_stats=False: eval mode uses "
                              "batch statistics, which tmpipe cannot")
        return "batchnorm", [] if m.eps == 1e-5 else [("eps", repr(m.eps))]
    if isinstance(m, nn.ReLU6):
        return "relu6", []
    if isinstance(m, nn.ReLU):
        return "relu", []
    if isinstance(m, nn.LeakyReLU):
        return "leaky_relu", [("alpha", repr(float(m.negative_slope)))]
    if isinstance(m, nn.Sigmoid):
        return "sigmoid", []
    if isinstance(m, nn.Tanh):
        return "tanh", []
    if isinstance(m, nn.Softmax):
        if m.dim is None:
            raise ExportError("Softmax without dim: give dim (1 for "
                              "classes after a Linear)")
        return "softmax", [] if m.dim == -1 else [("dim", m.dim)]
    if isinstance(m, nn.MaxPool2d):
        if m.return_indices:
            raise ExportError("return_indices=True is not supported")
        f = []
        _pool_common(m, f)
        if _pair(m.dilation) != (1, 1):
            f.append(("dilation", _yaml_list(_ints(m.dilation))))
        return "maxpool2d", f
    if isinstance(m, nn.AvgPool2d):
        if m.divisor_override:
            raise ExportError("divisor_override is not supported")
        f = []
        _pool_common(m, f)
        if not m.count_include_pad:
            f.append(("count_include_pad", "false"))
        return "avgpool2d", f
    if isinstance(m, nn.AdaptiveAvgPool2d):
        if _pair(m.output_size) != (1, 1):
            raise ExportError(f"output_size {m.output_size} is not "
                              "supported (only 1: global average)")
        return "global_avgpool", []
    if isinstance(m, nn.Flatten):
        if m.end_dim != -1:
            raise ExportError("end_dim other than -1 is not supported")
        if m.start_dim <= 0:
            raise ExportError(f"start_dim {m.start_dim}: give it counting "
                              "from the front, the batch being 0")
        return "flatten", [] if m.start_dim == 1 else [("start_dim",
                                                         m.start_dim)]
    raise ExportError(f"{type(m).__name__} is not a known module type")


def layer_yaml(name, module, inputs):
    """One `layers:` entry, "{name: ..., op: ..., input: ...}", for a
    module; inputs is a tensor name, or a list for add and concat (which
    a module does not say). None for a module skipped in eval mode."""
    spec = layer_fields(module)
    if spec is None:
        return None
    op, fields = spec
    if isinstance(inputs, (list, tuple)):
        src = ("inputs", '"' + ", ".join(inputs) + '"')
    else:
        src = ("input", _name(inputs))
    return _flow([("name", _name(name)), ("op", op), src] + fields)


def leaf_modules(model):
    """(name, module) of the modules that compute, in registration order:
    containers (Sequential and others with children) are walked."""
    out = []
    for name, m in model.named_modules():
        if not list(m.children()):
            out.append((name, m))
    return out


def _is_chain(model):
    """An nn.Sequential of leaves and nested nn.Sequentials."""
    if not isinstance(model, nn.Sequential):
        return False
    return all(_is_chain(c) if list(c.children()) else True
               for c in model.children())


def _shapes(model, leaves, input_shape):
    """Output shape of one sample for every leaf, from a forward pass on
    zeros (batch of 1)."""
    shapes, hooks = {}, []
    for name, m in leaves:
        def hook(_m, _inp, out, name=name):
            shapes[name] = list(out.shape[1:])
        hooks.append(m.register_forward_hook(hook))
    try:
        with torch.no_grad():
            model(torch.zeros((1,) + tuple(input_shape)))
    finally:
        for h in hooks:
            h.remove()
    return shapes


def pipeline_yaml(model, dir_text, input_shape=None, input_name="input",
                  calib=None, warn=None):
    """The pipeline skeleton as text. Returns (text, n_unsupported)."""
    model.eval()
    leaves = leaf_modules(model)
    if warn and not _is_chain(model):
        warn("the model is not an nn.Sequential: its leaf modules are "
             "chained in registration order; check every 'input' and add "
             "the add/concat layers of its forward() by hand")
    shapes = _shapes(model, leaves, input_shape) if input_shape else {}
    lines = ["tmpipe: 1", "model:", "  frontend: npy",
             f"  dir: {dir_text}"]
    shape = _yaml_list(input_shape) if input_shape else "[C, H, W]"
    lines.append(f"  inputs: {{{_name(input_name)}: {shape}}}")
    lines.append("  layers:")
    prev, bad = input_name, 0
    for name, m in leaves:
        try:
            entry = layer_yaml(name, m, prev)
        except ExportError as e:
            lines.append(f"    # {name} ({type(m).__name__}): {e}")
            if warn:
                warn(f"{name} ({type(m).__name__}): {e}")
            bad += 1
            continue
        if entry is None:
            continue
        line = "    - " + entry
        if name in shapes:
            line += f"  # -> {_yaml_list(shapes[name])}"
        lines.append(line)
        prev = name
    lines.append("calibration:")
    lines.append(f"  data: {calib or 'calib.npy'}"
                 + ("" if calib else "   # N samples of the input shape"))
    lines.append("  observer: minmax")
    return "\n".join(lines) + "\n", bad


def load_module(spec):
    """An nn.Module from MODULE (see the usage)."""
    if spec.endswith((".pt", ".pth")) and os.path.isfile(spec):
        try:
            obj = torch.load(spec, map_location="cpu", weights_only=False)
        except TypeError:           # torch before 1.13
            obj = torch.load(spec, map_location="cpu")
        if isinstance(obj, dict):
            raise ExportError(f"{spec} holds a state_dict, not a module: "
                              "name the code that builds the model "
                              "(file.py:NAME) and load the state_dict "
                              "there")
    else:
        where, sep, attr = spec.rpartition(":")
        if not sep or not where or not attr:
            raise ExportError(f"'{spec}': expected file.py:NAME, "
                              "package.module:NAME or a .pt file")
        if where.endswith(".py"):
            ms = importlib.util.spec_from_file_location("_tmpipe_export",
                                                        where)
            if ms is None:
                raise ExportError(f"{where}: cannot load")
            mod = importlib.util.module_from_spec(ms)
            sys.path.insert(0, os.path.dirname(os.path.abspath(where)))
            ms.loader.exec_module(mod)
        else:
            mod = importlib.import_module(where)
        if not hasattr(mod, attr):
            raise ExportError(f"{where} has no '{attr}'")
        obj = getattr(mod, attr)
        if not isinstance(obj, nn.Module) and callable(obj):
            obj = obj()
    if not isinstance(obj, nn.Module):
        raise ExportError(f"'{spec}' is a {type(obj).__name__}, not an "
                          "nn.Module")
    return obj


def main(argv=None):
    ap = argparse.ArgumentParser(
        description="Write a module's state_dict as .npy files for "
        "tmpipe's npy frontend and print a pipeline skeleton.")
    ap.add_argument("module", help="file.py:NAME, package.module:NAME or "
                    "a module saved with torch.save (.pt)")
    ap.add_argument("dir", help="folder for the .npy files (created)")
    ap.add_argument("--input-shape", metavar="C,H,W",
                    help="shape of one sample, without the batch")
    ap.add_argument("--input-name", default="input",
                    help="name of the model input (default: input)")
    ap.add_argument("--dir-text", metavar="TEXT",
                    help="what to write as dir: in the skeleton (default: "
                    "DIR as given; it is read relative to the pipeline)")
    ap.add_argument("-o", "--output", metavar="FILE",
                    help="write the skeleton to FILE instead of stdout")
    args = ap.parse_args(argv)

    def warn(msg):
        print(f"export_state_dict: {msg}", file=sys.stderr)

    try:
        shape = None
        if args.input_shape:
            try:
                shape = [int(x) for x in args.input_shape.split(",")]
            except ValueError:
                raise ExportError(f"--input-shape '{args.input_shape}': "
                                  "expected sizes such as 3,32,32")
        model = load_module(args.module)
        model.eval()
        save_state_dict(model, args.dir)
        text, bad = pipeline_yaml(model, args.dir_text or args.dir, shape,
                                  args.input_name, warn=warn)
    except ExportError as e:
        warn(str(e))
        return 2
    if args.output:
        with open(args.output, "w") as f:
            f.write(text)
    else:
        sys.stdout.write(text)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
