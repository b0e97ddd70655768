#!/usr/bin/python3
"""Writes the hand-built ONNX fixtures of tests/data/onnx/ with onnx.helper
(onnxruntime is not in Debian, so the quantized graphs are built by hand
with known scales):

  qdq_mlp.onnx       QDQ: int8 activations, per-channel int8 Gemm weights,
                     int32 bias, Relu; qdq_mlp_input.npy and
                     qdq_mlp_output.npy (float math on the dequantized
                     weights, no activation rounding: what tmpipe's float
                     model computes)
  qdq_mlp_u8.onnx    the same values with uint8 activations and weights
                     (zero points 128): tmpipe's int8 parameters must match
  qdq_cnn.onnx       QDQ CNN: Conv (per-channel) + Relu, MaxPool, Flatten,
                     Gemm; qdq_cnn_calib.npy
  qop_conv.onnx      QOperator: QuantizeLinear, QLinearConv (per-channel,
                     int32 bias), DequantizeLinear; qop_conv_input.npy and
                     qop_conv_output.npy (the float model's outputs)
  qop_matmul.onnx    QOperator: QLinearMatMul [N, 4] x [4, 3]
  bad_zp.onnx        a weight with a nonzero zero point
  unsupported.onnx   Exp (twice), Sin and com.microsoft.Gelu
  matmul_add, gemm_ab, typed, clip6, softmax11 (.onnx, _input.npy, _output.npy)
                     float forms the backend tests leave out
  ext.onnx, ext.bin  a Gemm whose weight is external data
  ext_escape.onnx    external data pointing outside the model's folder
  bad_<what>.onnx    malformed graphs (bad_model()) that crashed, overflowed,
                     leaked or allocated gigabytes before the importer
                     checked them: each must fail with one message
  ../../../examples/xor/xor.onnx  the XOR example as an ONNX graph
The pipelines (*.yaml) are written by hand.

Run with /usr/bin/python3; the outputs are committed."""
import os

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data",
                   "onnx")
OPSET = [helper.make_opsetid("", 13)]


def save(graph, name, extra_opsets=()):
    m = helper.make_model(graph, opset_imports=OPSET + list(extra_opsets),
                          producer_name="tmpipe tests/gen/onnx_fixtures.py")
    m.ir_version = 8
    onnx.checker.check_model(m)
    onnx.save(m, os.path.join(OUT, name))


def const(name, arr):
    return numpy_helper.from_array(np.asarray(arr), name)


# The QDQ MLP's numbers (int8 form).
S_X = np.float32(1 / 64)
S_W = np.array([0.01, 0.02, 0.03], np.float32)
W_Q = np.array([[127, -127, 3, 0],
                [-64, 10, 20, 30],
                [1, 2, -3, 100]], np.int8)
B_Q = np.array([100, -200, 7], np.int32)
S_Y, ZP_Y = np.float32(0.05), -10
S_R, ZP_R = np.float32(0.04), -128


def qdq_mlp(u8):
    at = np.uint8 if u8 else np.int8
    sh = 128 if u8 else 0
    inits = [
        const("x_scale", S_X), const("x_zp", np.array(0 + sh, at)),
        const("w_q", (W_Q.astype(np.int32) + sh).astype(at)),
        const("w_scale", S_W), const("w_zp", np.full(3, sh, at)),
        const("b_q", B_Q), const("b_scale", (S_X * S_W).astype(np.float32)),
        const("b_zp", np.zeros(3, np.int32)),
        const("y_scale", S_Y), const("y_zp", np.array(ZP_Y + sh, at)),
        const("r_scale", S_R), const("r_zp", np.array(ZP_R + sh, at)),
    ]
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "x_scale", "x_zp"], ["x_q"],
                         name="q_x"),
        helper.make_node("DequantizeLinear", ["x_q", "x_scale", "x_zp"],
                         ["x_dq"], name="dq_x"),
        helper.make_node("DequantizeLinear", ["w_q", "w_scale", "w_zp"],
                         ["w_dq"], name="dq_w", axis=0),
        helper.make_node("DequantizeLinear", ["b_q", "b_scale", "b_zp"],
                         ["b_dq"], name="dq_b", axis=0),
        helper.make_node("Gemm", ["x_dq", "w_dq", "b_dq"], ["y"], name="fc",
                         transB=1),
        helper.make_node("QuantizeLinear", ["y", "y_scale", "y_zp"], ["y_q"],
                         name="q_y"),
        helper.make_node("DequantizeLinear", ["y_q", "y_scale", "y_zp"],
                         ["y_dq"], name="dq_y"),
        helper.make_node("Relu", ["y_dq"], ["r"], name="relu"),
        helper.make_node("QuantizeLinear", ["r", "r_scale", "r_zp"], ["r_q"],
                         name="q_r"),
        helper.make_node("DequantizeLinear", ["r_q", "r_scale", "r_zp"],
                         ["out"], name="dq_r"),
    ]
    g = helper.make_graph(
        nodes, "qdq_mlp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, ["N", 3])],
        inits)
    save(g, "qdq_mlp_u8.onnx" if u8 else "qdq_mlp.onnx")


def qdq_mlp_ref():
    rng = np.random.default_rng(3)
    x = rng.uniform(-2, 2, (6, 4)).astype(np.float32)
    w = W_Q.astype(np.float32) * S_W[:, None]
    b = B_Q.astype(np.float32) * (S_X * S_W).astype(np.float32)
    y = np.maximum(x @ w.T + b, 0).astype(np.float32)
    np.save(os.path.join(OUT, "qdq_mlp_input.npy"), x)
    np.save(os.path.join(OUT, "qdq_mlp_output.npy"), y)
    np.save(os.path.join(OUT, "qdq_mlp_calib.npy"),
            rng.uniform(-2, 2, (32, 4)).astype(np.float32))


def qop_conv():
    w = np.array([[[[1, 2, 3], [4, 5, 6], [7, 8, 9]]],
                  [[[-9, 0, 9], [-50, 0, 50], [127, 0, -127]]]], np.int8)
    inits = [
        const("x_scale", np.float32(1 / 32)), const("x_zp", np.uint8(128)),
        const("w", w), const("w_scale", np.array([0.5, 0.25], np.float32)),
        const("w_zp", np.zeros(2, np.int8)),
        const("y_scale", np.float32(0.1)), const("y_zp", np.uint8(100)),
        const("B", np.array([64, -32], np.int32)),
    ]
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "x_scale", "x_zp"], ["x_q"],
                         name="q_x"),
        helper.make_node("QLinearConv",
                         ["x_q", "x_scale", "x_zp", "w", "w_scale", "w_zp",
                          "y_scale", "y_zp", "B"], ["y_q"], name="qconv",
                         pads=[1, 1, 1, 1]),
        helper.make_node("DequantizeLinear", ["y_q", "y_scale", "y_zp"],
                         ["y"], name="dq_y"),
    ]
    g = helper.make_graph(
        nodes, "qop_conv",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 4, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2, 4, 4])],
        inits)
    save(g, "qop_conv.onnx")
    # The float model tmpipe reads: conv of the float input with the
    # dequantized weights, bias B s_x s_w[c], no activation rounding.
    rng = np.random.default_rng(11)
    x = rng.uniform(-2, 2, (4, 1, 4, 4)).astype(np.float32)
    wf = w.astype(np.float32) * np.array([0.5, 0.25], np.float32)[:, None,
                                                                  None, None]
    bf = np.array([64, -32], np.float32) * np.float32(1 / 32) * \
        np.array([0.5, 0.25], np.float32)
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    y = np.zeros((4, 2, 4, 4), np.float32)
    for i in range(4):
        for j in range(4):
            y[:, :, i, j] = np.einsum("nchw,ochw->no",
                                      xp[:, :, i:i + 3, j:j + 3], wf) + bf
    np.save(os.path.join(OUT, "qop_conv_input.npy"), x)
    np.save(os.path.join(OUT, "qop_conv_output.npy"), y.astype(np.float32))


def qop_matmul():
    b = np.array([[1, -2, 3], [4, 5, -6], [7, -8, 9], [10, 11, 12]], np.int8)
    inits = [
        const("a_scale", np.float32(0.125)), const("a_zp", np.int8(0)),
        const("b", b), const("b_scale", np.float32(0.5)),
        const("b_zp", np.int8(0)),
        const("y_scale", np.float32(0.25)), const("y_zp", np.int8(5)),
    ]
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "a_scale", "a_zp"], ["a_q"],
                         name="q_x"),
        helper.make_node("QLinearMatMul",
                         ["a_q", "a_scale", "a_zp", "b", "b_scale", "b_zp",
                          "y_scale", "y_zp"], ["y_q"], name="qmm"),
        helper.make_node("DequantizeLinear", ["y_q", "y_scale", "y_zp"],
                         ["y"], name="dq_y"),
    ]
    g = helper.make_graph(
        nodes, "qop_matmul",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3])],
        inits)
    save(g, "qop_matmul.onnx")


def qdq_cnn():
    """x [N, 1, 6, 6] -> QDQ -> Conv 3x3 (4 filters, per-channel int8,
    int32 bias) -> Relu -> QDQ -> MaxPool 2 -> Flatten -> QDQ Gemm (per
    tensor) -> QDQ -> out [N, 3]; qdq_cnn_calib.npy holds 32 samples."""
    rng = np.random.default_rng(5)
    s_x = np.float32(1 / 32)
    wc = rng.integers(-127, 128, (4, 1, 3, 3)).astype(np.int8)
    s_wc = np.array([0.004, 0.003, 0.005, 0.002], np.float32)
    bc = rng.integers(-300, 300, 4).astype(np.int32)
    s_c = np.float32(0.01)
    wf = rng.integers(-127, 128, (3, 36)).astype(np.int8)
    s_wf = np.float32(0.01)
    bf = rng.integers(-500, 500, 3).astype(np.int32)
    s_o = np.float32(0.04)
    i8 = np.int8
    inits = [
        const("x_s", s_x), const("x_z", i8(0)),
        const("wc_q", wc), const("wc_s", s_wc), const("wc_z", np.zeros(4, i8)),
        const("bc_q", bc), const("bc_s", (s_x * s_wc).astype(np.float32)),
        const("bc_z", np.zeros(4, np.int32)),
        const("c_s", s_c), const("c_z", i8(-128)),
        const("p_s", s_c), const("p_z", i8(-128)),
        const("wf_q", wf), const("wf_s", s_wf), const("wf_z", i8(0)),
        const("bf_q", bf), const("bf_s", np.float32(s_c * s_wf)),
        const("bf_z", np.int32(0)),
        const("o_s", s_o), const("o_z", i8(0)),
    ]
    N = helper.make_node
    nodes = [
        N("QuantizeLinear", ["x", "x_s", "x_z"], ["x_q"], name="q_x"),
        N("DequantizeLinear", ["x_q", "x_s", "x_z"], ["x_dq"], name="dq_x"),
        N("DequantizeLinear", ["wc_q", "wc_s", "wc_z"], ["wc"], name="dq_wc",
          axis=0),
        N("DequantizeLinear", ["bc_q", "bc_s", "bc_z"], ["bc"], name="dq_bc"),
        N("Conv", ["x_dq", "wc", "bc"], ["c"], name="conv", pads=[1, 1, 1, 1]),
        N("Relu", ["c"], ["cr"], name="relu"),
        N("QuantizeLinear", ["cr", "c_s", "c_z"], ["cr_q"], name="q_c"),
        N("DequantizeLinear", ["cr_q", "c_s", "c_z"], ["cr_dq"], name="dq_c"),
        N("MaxPool", ["cr_dq"], ["p"], name="pool", kernel_shape=[2, 2],
          strides=[2, 2]),
        N("QuantizeLinear", ["p", "p_s", "p_z"], ["p_q"], name="q_p"),
        N("DequantizeLinear", ["p_q", "p_s", "p_z"], ["p_dq"], name="dq_p"),
        N("Flatten", ["p_dq"], ["f"], name="flatten"),
        N("DequantizeLinear", ["wf_q", "wf_s", "wf_z"], ["wf"], name="dq_wf"),
        N("DequantizeLinear", ["bf_q", "bf_s", "bf_z"], ["bf"], name="dq_bf"),
        N("Gemm", ["f", "wf", "bf"], ["o"], name="fc", transB=1),
        N("QuantizeLinear", ["o", "o_s", "o_z"], ["o_q"], name="q_o"),
        N("DequantizeLinear", ["o_q", "o_s", "o_z"], ["out"], name="dq_o"),
    ]
    g = helper.make_graph(
        nodes, "qdq_cnn",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                       ["N", 1, 6, 6])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, ["N", 3])],
        inits)
    save(g, "qdq_cnn.onnx")
    np.save(os.path.join(OUT, "qdq_cnn_calib.npy"),
            rng.uniform(-1, 1, (32, 1, 6, 6)).astype(np.float32))


def bad_zp():
    inits = [const("w_q", np.ones((2, 3), np.int8)),
             const("w_scale", np.float32(0.1)), const("w_zp", np.int8(3))]
    nodes = [
        helper.make_node("DequantizeLinear", ["w_q", "w_scale", "w_zp"],
                         ["w_dq"], name="dq_w"),
        helper.make_node("Gemm", ["x", "w_dq"], ["y"], name="fc", transB=1),
    ]
    g = helper.make_graph(
        nodes, "bad_zp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 2])],
        inits)
    save(g, "bad_zp.onnx")


def unsupported():
    nodes = [
        helper.make_node("Exp", ["x"], ["a"], name="exp1"),
        helper.make_node("Relu", ["a"], ["b"], name="relu"),
        helper.make_node("Sin", ["b"], ["c"], name="sin1"),
        helper.make_node("Exp", ["c"], ["d"], name="exp2"),
        helper.make_node("Gelu", ["d"], ["y"], name="gelu1",
                         domain="com.microsoft"),
    ]
    g = helper.make_graph(
        nodes, "unsupported",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3])])
    m = helper.make_model(g, opset_imports=OPSET +
                          [helper.make_opsetid("com.microsoft", 1)])
    m.ir_version = 8
    onnx.save(m, os.path.join(OUT, "unsupported.onnx"))


def external(name, location, write_bin):
    w = np.arange(6, dtype=np.float32).reshape(2, 3) / 4
    t = numpy_helper.from_array(w, "w")
    t.ClearField("raw_data")
    t.data_location = TensorProto.EXTERNAL
    for k, v in (("location", location), ("offset", "16"),
                 ("length", str(w.nbytes))):
        e = t.external_data.add()
        e.key, e.value = k, v
    if write_bin:
        with open(os.path.join(OUT, location), "wb") as f:
            f.write(b"tmpipe-pad-16by." + w.tobytes())
    g = helper.make_graph(
        [helper.make_node("Gemm", ["x", "w"], ["y"], name="fc", transB=1)],
        name,
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 2])],
        [t])
    m = helper.make_model(g, opset_imports=OPSET)
    m.ir_version = 8
    onnx.save(m, os.path.join(OUT, name + ".onnx"))


def save_unchecked(nodes, name, inits, opset=13, x_dim=4, domains=()):
    """A graph x [N, x_dim] -> y saved without onnx.checker: these break
    the spec on purpose."""
    g = helper.make_graph(
        nodes, name,
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", x_dim])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4])],
        inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)] +
                          list(domains),
                          producer_name="tmpipe tests/gen/onnx_fixtures.py")
    m.ir_version = 7
    onnx.save(m, os.path.join(OUT, name + ".onnx"))


def bad_model():
    """Malformed models from a review under ASan and UBSan: each once
    crashed, overflowed or allocated far more than the file holds."""
    N = helper.make_node
    # Unsupported operators with names longer than the message:
    # the one-line list overflowed its buffer.
    save_unchecked([N("Foo", ["x"], ["a"], name="N" * 1500),
                    N("B" * 1100, ["a"], ["b"], name="m"),
                    N("Baz", ["b"], ["y"], name="z", domain="d" * 200)],
                   "bad_longname", [])
    # Unsqueeze of a constant with no axes: axes[0] read from NULL
    # (opset 11 attribute) or from an empty tensor (opset 13 input).
    c = const("c", np.array([1, 2], np.int64))
    unsq = N("Unsqueeze", ["c"], ["u"], name="unsq", axes=[])
    save_unchecked([unsq, N("Reshape", ["x", "u"], ["y"], name="rs")],
                   "bad_unsq11", [c], opset=11)
    save_unchecked([N("Unsqueeze", ["c", "ax"], ["u"], name="unsq"),
                    N("Reshape", ["x", "u"], ["y"], name="rs")],
                   "bad_unsq13", [c, const("ax", np.zeros(0, np.int64))])
    # DequantizeLinear of int8 weights with a float zero point (read as
    # integers from NULL), a uint8 one, and an empty scale (read past a
    # malloc(0)).
    q = const("q", np.ones((4, 4), np.int8))
    s = const("s", np.float32(0.1))

    def dq(name, inits, inputs):
        save_unchecked([N("DequantizeLinear", inputs, ["w"], name="dq"),
                        N("MatMul", ["x", "w"], ["y"], name="mm")],
                       name, [q] + inits)
    dq("bad_dq_float_zp", [s, const("z", np.float32(0))], ["q", "s", "z"])
    dq("bad_dq_uint8_zp", [s, const("z", np.uint8(0))], ["q", "s", "z"])
    dq("bad_dq_empty_scale", [const("s", np.zeros(0, np.float32))],
       ["q", "s"])
    # Reshape to 2^30 x 2^30 x 2^30 x 2^30: the product overflowed int64.
    save_unchecked([N("Reshape", ["x", "s"], ["y"], name="rs")],
                   "bad_reshape_ovf",
                   [const("s", np.array([-1] + [1 << 30] * 4, np.int64))])
    # 2^31 floats announced by dims, none present: 8 GiB was allocated
    # before the count was checked.
    big = TensorProto()
    big.name, big.data_type = "w", TensorProto.FLOAT
    big.dims.extend([1 << 15, 1 << 16])
    save_unchecked([N("MatMul", ["x", "w"], ["y"], name="mm")],
                   "bad_big_dims", [big])
    # A weight name of 299 characters: "/T" cut off by the 300-byte
    # name buffer gave the weight's own name, no free name was found and
    # the transposed copy leaked.
    save_unchecked([N("MatMul", ["x", "W" * 299], ["y"], name="mm")],
                   "bad_long_weight",
                   [const("W" * 299, np.ones((4, 4), np.float32))])
    # One 1024-value constant concatenated 1025 times: more than the
    # 2^20 values shape arithmetic takes (the same file could ask for
    # terabytes).
    save_unchecked([N("Concat", ["v"] * 1025, ["s"], name="cat", axis=0),
                    N("Reshape", ["x", "s"], ["y"], name="rs")],
                   "bad_concat_const",
                   [const("v", np.ones(1024, np.int64))])
    # A Concat of constants named like its input (found by fuzz-onnx):
    # the result shadowed the input, whose values were then read from
    # the longer result, past its end; and one with no output, whose
    # name was strdup(NULL).
    save_unchecked([N("Concat", ["v", "v"], ["v"], name="cat", axis=0),
                    N("Reshape", ["x", "v"], ["y"], name="rs")],
                   "bad_concat_self",
                   [const("v", np.array([1, -1], np.int64))])
    save_unchecked([N("Concat", ["v", "v"], [], name="cat", axis=0),
                    N("Relu", ["x"], ["y"], name="relu")],
                   "bad_concat_noout",
                   [const("v", np.array([1, -1], np.int64))])
    # Two Add constants whose names differ only in their 300th character:
    # cut to the 300-byte buffer, the second add silently read the
    # first's values.
    save_unchecked([N("Add", ["x", "P" * 299], ["t"], name="add1"),
                    N("Add", ["t", "P" * 299 + "Q"], ["y"], name="add2")],
                   "bad_cut_names",
                   [const("P" * 299, np.ones(4, np.float32)),
                    const("P" * 299 + "Q", np.full(4, 100.0, np.float32))])
    # y = Identity(x) with x named by 511 characters and y by those and
    # one more: the output's copy, named in a 512-byte buffer, was cut to
    # x's name, and the search for a free name never ended.
    a = "A" * 511
    g = helper.make_graph(
        [N("Identity", [a], [a + "B"], name="id")], "bad_long_output",
        [helper.make_tensor_value_info(a, TensorProto.FLOAT, ["N", 4])],
        [helper.make_tensor_value_info(a + "B", TensorProto.FLOAT,
                                       ["N", 4])])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)],
                          producer_name="tmpipe tests/gen/onnx_fixtures.py")
    m.ir_version = 7
    onnx.save(m, os.path.join(OUT, "bad_long_output.onnx"))
    # A valid graph whose node and tensor names hold a newline and an
    # escape: tmpipe inspect prints them as '?'.
    save_unchecked([N("Relu", ["x"], ["r\ne\x1b"], name="n\x1b[1m"),
                    N("Relu", ["r\ne\x1b"], ["y"], name="relu2")],
                   "ctrl_names", [])


def xor():
    """examples/xor/xor.onnx: the XOR example's weights as a Gemm-Relu-Gemm-
    Sigmoid graph (the form torch.onnx.export gives nn.Linear)."""
    ex = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                      "examples", "xor")
    w = {k: np.load(os.path.join(ex, "weights", k + ".npy")).astype(np.float32)
         for k in ("fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias")}
    N = helper.make_node
    nodes = [
        N("Gemm", ["input", "fc1.weight", "fc1.bias"], ["fc1"], name="fc1",
          transB=1),
        N("Relu", ["fc1"], ["h1"], name="h1"),
        N("Gemm", ["h1", "fc2.weight", "fc2.bias"], ["fc2"], name="fc2",
          transB=1),
        N("Sigmoid", ["fc2"], ["out"], name="out"),
    ]
    g = helper.make_graph(
        nodes, "xor",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 2])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, ["N", 1])],
        [const(k, v) for k, v in w.items()])
    m = helper.make_model(g, opset_imports=OPSET,
                          producer_name="tmpipe tests/gen/onnx_fixtures.py")
    m.ir_version = 8
    onnx.checker.check_model(m)
    onnx.save(m, os.path.join(ex, "xor.onnx"))


def float_case(name, nodes, x_shape, out_shape, inits, x, y, opset):
    """A float graph x -> ... -> y at the given opset, with its input and
    numpy's output."""
    g = helper.make_graph(
        nodes, name,
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, out_shape)],
        inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)],
                          producer_name="tmpipe tests/gen/onnx_fixtures.py")
    m.ir_version = 7
    onnx.checker.check_model(m)
    onnx.save(m, os.path.join(OUT, name + ".onnx"))
    np.save(os.path.join(OUT, name + "_input.npy"), x.astype(np.float32))
    np.save(os.path.join(OUT, name + "_output.npy"), y.astype(np.float32))


def float_cases():
    """Forms the backend tests of ONNX 1.12 do not cover: MatMul + Add
    (one dense with a bias), Gemm with transB 0, alpha, beta and a scalar
    C, Clip-6's attributes and Softmax-11 on a 3-D input (normalized over
    everything from the axis on)."""
    rng = np.random.default_rng(13)
    N = helper.make_node
    x = rng.uniform(-2, 2, (5, 3)).astype(np.float32)
    w = rng.uniform(-1, 1, (3, 2)).astype(np.float32)
    b = rng.uniform(-1, 1, 2).astype(np.float32)
    float_case("matmul_add",
               [N("MatMul", ["x", "w"], ["t"], name="mm"),
                N("Add", ["b", "t"], ["y"], name="add")],
               ["N", 3], ["N", 2], [const("w", w), const("b", b)],
               x, x @ w + b, 13)
    c = np.array([0.5], np.float32)
    float_case("gemm_ab",
               [N("Gemm", ["x", "w", "c"], ["y"], name="gemm", alpha=0.5,
                  beta=2.0)],
               ["N", 3], ["N", 2], [const("w", w), const("c", c)],
               x, 0.5 * (x @ w) + 2.0 * c, 13)
    # Initializers in the typed fields (float_data, double_data,
    # int64_data) rather than raw_data.
    wt = helper.make_tensor("wt", TensorProto.FLOAT, [2, 3],
                            w.T.ravel().tolist(), raw=False)
    ct = helper.make_tensor("ct", TensorProto.DOUBLE, [2], [0.25, -1.5],
                            raw=False)
    st = helper.make_tensor("shape", TensorProto.INT64, [3], [0, 2, 1],
                            raw=False)
    float_case("typed",
               [N("Gemm", ["x", "wt", "ct"], ["t"], name="gemm", transB=1),
                N("Reshape", ["t", "shape"], ["y"], name="reshape")],
               ["N", 3], ["N", 2, 1], [wt, ct, st],
               x, (x @ w + np.array([0.25, -1.5], np.float32)).reshape(5, 2, 1),
               13)
    float_case("clip6",
               [N("Clip", ["x"], ["y"], name="clip", min=-0.5, max=1.0)],
               ["N", 3], ["N", 3], [], x, np.clip(x, -0.5, 1.0), 7)
    x3 = rng.uniform(-2, 2, (4, 2, 3)).astype(np.float32)
    e = np.exp(x3 - x3.reshape(4, -1).max(axis=1)[:, None, None])
    float_case("softmax11",
               [N("Softmax", ["x"], ["y"], name="softmax", axis=1)],
               ["N", 2, 3], ["N", 2, 3], [], x3,
               e / e.reshape(4, -1).sum(axis=1)[:, None, None], 11)


def main():
    os.makedirs(OUT, exist_ok=True)
    qdq_mlp(False)
    qdq_mlp(True)
    qdq_mlp_ref()
    qdq_cnn()
    qop_conv()
    qop_matmul()
    bad_zp()
    unsupported()
    external("ext", "ext.bin", True)
    external("ext_escape", "../../gen/onnx_fixtures.py", False)
    xor()
    float_cases()
    bad_model()


if __name__ == "__main__":
    main()
