#!/usr/bin/python3
"""Writes fuzz/corpus/onnx/op_*.onnx: one tiny float graph per op form the
onnx frontend imports (and a few chains PyTorch exports), so the fuzzer's
byte mutations start inside every op's import code rather than having to
find it. Weights are small and arbitrary: these are seeds, not fixtures
(tests/gen/onnx_fixtures.py writes those). Run with /usr/bin/python3; the
outputs are committed."""
import os

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..",
                   "corpus", "onnx")
rng = np.random.default_rng(7)


def w(name, *shape, dtype=np.float32):
    return numpy_helper.from_array(
        rng.uniform(-1, 1, shape).astype(dtype), name)


def ints(name, vals, dtype=np.int64):
    return numpy_helper.from_array(np.asarray(vals, dtype), name)


def vi(name, shape, t=TensorProto.FLOAT):
    return helper.make_tensor_value_info(name, t, shape)


def save(name, nodes, inputs, outputs, inits=(), opset=13):
    g = helper.make_graph(nodes, name, inputs, outputs, list(inits))
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)],
                          producer_name="tmpipe fuzz/gen/onnx_seeds.py")
    m.ir_version = 7
    onnx.checker.check_model(m)
    onnx.save(m, os.path.join(OUT, "op_" + name + ".onnx"))


X4 = [1, 2, 4, 4]
x4 = [vi("x", X4)]
N = helper.make_node

for op in ("Relu", "Sigmoid", "Tanh", "Identity", "Dropout"):
    save(op.lower(), [N(op, ["x"], ["y"])], [vi("x", [1, 3])],
         [vi("y", [1, 3])])
save("leaky_relu", [N("LeakyRelu", ["x"], ["y"], alpha=0.1)],
     [vi("x", [1, 3])], [vi("y", [1, 3])])
save("softmax", [N("Softmax", ["x"], ["y"], axis=-1)], [vi("x", [1, 5])],
     [vi("y", [1, 5])])
save("clip11", [N("Clip", ["x", "lo", "hi"], ["y"])], [vi("x", [1, 3])],
     [vi("y", [1, 3])],
     [numpy_helper.from_array(np.float32(0), "lo"),
      numpy_helper.from_array(np.float32(6), "hi")])
save("clip6", [N("Clip", ["x"], ["y"], min=0.0, max=6.0)],
     [vi("x", [1, 3])], [vi("y", [1, 3])], opset=6)
save("add", [N("Add", ["x", "b"], ["y"])], [vi("x", [1, 3])],
     [vi("y", [1, 3])], [w("b", 3)])
save("add2", [N("Relu", ["x"], ["r"]), N("Add", ["x", "r"], ["y"])],
     [vi("x", [1, 3])], [vi("y", [1, 3])])
save("gemm", [N("Gemm", ["x", "w", "b"], ["y"], transB=1, alpha=1.0,
                beta=1.0)],
     [vi("x", [1, 3])], [vi("y", [1, 2])], [w("w", 2, 3), w("b", 2)])
save("matmul", [N("MatMul", ["x", "w"], ["y"])], [vi("x", [1, 3])],
     [vi("y", [1, 2])], [w("w", 3, 2)])
save("conv", [N("Conv", ["x", "w", "b"], ["y"], kernel_shape=[3, 3],
                pads=[1, 1, 1, 1], strides=[1, 1])],
     x4, [vi("y", [1, 3, 4, 4])], [w("w", 3, 2, 3, 3), w("b", 3)])
save("conv_dw", [N("Conv", ["x", "w"], ["y"], kernel_shape=[3, 3],
                   group=2, strides=[2, 2], auto_pad="SAME_UPPER")],
     x4, [vi("y", [1, 2, 2, 2])], [w("w", 2, 1, 3, 3)])
save("conv_bn", [N("Conv", ["x", "w"], ["c"], kernel_shape=[1, 1]),
                 N("BatchNormalization", ["c", "g", "be", "m", "v"], ["y"],
                   epsilon=1e-5)],
     x4, [vi("y", [1, 2, 4, 4])],
     [w("w", 2, 2, 1, 1), w("g", 2), w("be", 2), w("m", 2),
      numpy_helper.from_array(np.array([1, 2], np.float32), "v")])
save("maxpool", [N("MaxPool", ["x"], ["y"], kernel_shape=[2, 2],
                   strides=[2, 2])], x4, [vi("y", [1, 2, 2, 2])])
save("avgpool", [N("AveragePool", ["x"], ["y"], kernel_shape=[3, 3],
                   pads=[1, 1, 1, 1], count_include_pad=1)],
     x4, [vi("y", [1, 2, 4, 4])])
save("gap", [N("GlobalAveragePool", ["x"], ["p"]),
             N("Flatten", ["p"], ["y"], axis=1)],
     x4, [vi("y", [1, 2])])
save("concat", [N("Relu", ["x"], ["r"]),
                N("Concat", ["x", "r"], ["y"], axis=1)],
     x4, [vi("y", [1, 4, 4, 4])])
save("reshape", [N("Reshape", ["x", "s"], ["y"])], x4, [vi("y", [1, 32])],
     [ints("s", [0, -1])])
# PyTorch's x.view(x.size(0), -1): Shape, Gather, Unsqueeze, Concat,
# Reshape.
save("view", [N("Shape", ["x"], ["sh"]),
              N("Constant", [], ["i0"],
                value=numpy_helper.from_array(np.int64(0), "i0")),
              N("Gather", ["sh", "i0"], ["n"], axis=0),
              N("Unsqueeze", ["n", "ax"], ["n1"]),
              N("Concat", ["n1", "m1"], ["s"], axis=0),
              N("Reshape", ["x", "s"], ["y"])],
     x4, [vi("y", [1, 32])], [ints("ax", [0]), ints("m1", [-1])])
save("unsqueeze11", [N("Unsqueeze", ["x"], ["y"], axes=[2])],
     [vi("x", [1, 3])], [vi("y", [1, 3, 1])], opset=11)
save("qdq", [N("QuantizeLinear", ["x", "s", "z"], ["q"]),
             N("DequantizeLinear", ["q", "s", "z"], ["y"])],
     [vi("x", [1, 3])], [vi("y", [1, 3])],
     [numpy_helper.from_array(np.float32(0.05), "s"),
      numpy_helper.from_array(np.int8(0), "z")])
