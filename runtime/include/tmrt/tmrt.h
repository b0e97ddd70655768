/* libtmrt — freestanding int8 inference kernels for microcontrollers.
 *
 * No allocation, no libc, no floating point: every real-valued quantity
 * (scales, multipliers) was turned into integers on the host by tmpipe.
 * Naming and parameter bundles follow TFLite Micro and CMSIS-NN
 * (tmrt_<op>_<dtype>); the fixed-point arithmetic is gemmlowp's.
 *
 * Layout. Images are NHWC: element (n, h, w, c) of a tensor of dims
 * (N, H, W, C) is at ((n * H + h) * W + w) * C + c, channels innermost,
 * as in TFLite and CMSIS-NN. tmpipe's model (and its float reference)
 * is ONNX's NCHW, one sample CHW; the emitter converts: activations
 * CHW -> HWC, conv weights OIHW -> OHWI, depthwise weights
 * [C*mult][1][kh][kw] -> [kh][kw][C*mult], and every axis it passes a
 * kernel (concat, softmax, add broadcasting) counted in NHWC.
 *
 * Common rules of every kernel:
 * - Quantization is TFLite's int8 scheme: real = scale * (q - zp),
 *   weights symmetric (zp 0), bias int32 at s_in * s_w. A requantizer
 *   is (multiplier, shift) for the real factor multiplier * 2^-31 *
 *   2^-shift, shift > 0 = right (tmpipe's sign, the opposite of
 *   TFLite's), applied by tmrt_requantize. The identity is
 *   (1073741824, -1): with equal zero points, max pooling and concat
 *   then copy (the same bytes, faster) and the average pools take
 *   TFLite's rounding (see there).
 * - Per-tensor or per-channel: n_requant is 1 or the number of output
 *   channels, as in tmrt_fully_connected_s8.
 * - act_min, act_max lie in [-128, 127]; ReLU (act_min = output_zp) and
 *   ReLU6 (act_max = lround(6 / s_out) + output_zp) are folded there.
 * - Parameters are validated first: a kernel that returns anything but
 *   TMRT_OK has not written its output. Input and output zero points
 *   must lie in [-128, 127] (tmrt_fully_connected_s8 checks only its
 *   input's), every dimension must be >= 1 and every tensor must hold
 *   at most INT32_MAX elements.
 * - No kernel allocates or needs scratch memory (so there is no
 *   tmrt_<op>_s8_scratch_size()). Outputs may not overlap inputs except
 *   where a kernel says so.
 * - 32-bit targets: no kernel divides 64-bit integers, so none pulls in
 *   a libgcc helper (__aeabi_ldivmod); 64-bit products and sums remain
 *   (compiled inline).
 */
#ifndef TMRT_TMRT_H
#define TMRT_TMRT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__) && __GNUC__ >= 4
#define TMRT_API __attribute__((visibility("default")))
#else
#define TMRT_API
#endif

typedef enum tmrt_status {
	TMRT_OK = 0,
	TMRT_ERR_ARG,		/* a required pointer is NULL */
	TMRT_ERR_SHAPE,		/* a dimension is out of range */
	TMRT_ERR_PARAM,		/* a zero point, range or count is invalid */
	/* Models and .tmb blobs (tmrt/model.h, tmpipe-blob(5)). */
	TMRT_ERR_FORMAT,	/* not a .tmb blob, or a malformed one */
	TMRT_ERR_VERSION,	/* a .tmb format version this libtmrt lacks */
	TMRT_ERR_TRUNCATED,	/* the blob is shorter than it says */
	TMRT_ERR_CRC,		/* the blob's checksum does not match */
	TMRT_ERR_RANGE,		/* an offset, size, index or count is out
				 * of bounds */
	TMRT_ERR_ALIGN,		/* a section, array or buffer is
				 * misaligned */
	TMRT_ERR_NOSPACE,	/* the caller's arena or RAM is too small */
	TMRT_ERR_OVERLAP	/* a layer's output overlaps an input where
				 * its kernel forbids it */
} tmrt_status;

/* gemmlowp SaturatingRoundingDoublingHighMul: a * b / 2^31 rounded to
 * nearest, ties towards +infinity (gemmlowp's nudge: 0.5 -> 1, -0.5 -> 0,
 * -1.5 -> -1); INT32_MIN * INT32_MIN saturates to INT32_MAX. */
TMRT_API int32_t tmrt_srdhm(int32_t a, int32_t b);

/* gemmlowp RoundingDivideByPOT: round(x / 2^exponent), ties away from
 * zero. exponent <= 0 returns x; every larger exponent is defined too
 * (from 32 on the result is 0, except -1 for INT32_MIN at 32). */
TMRT_API int32_t tmrt_rdbpot(int32_t x, int exponent);

/* acc * multiplier * 2^-31 * 2^-shift + zp_out, clamped to
 * [act_min, act_max]. shift > 0 shifts right (rounding), shift < 0
 * left; the left shift is done in int64 and saturates to int32 (not
 * TFLite's int32 shift, which overflows when the real multiplier > 1). */
TMRT_API int32_t tmrt_requantize(int32_t acc, int32_t multiplier,
				 int32_t shift, int32_t zp_out,
				 int32_t act_min, int32_t act_max);

/* Largest in_features for which the int32 accumulator cannot overflow:
 * |w * (x - input_zp)| <= 128 * 255. */
#define TMRT_FC_MAX_IN_FEATURES 65535

typedef struct tmrt_fc_params {
	int32_t in_features, out_features;
	const int8_t *weights;		/* [out_features][in_features], zp 0 */
	const int32_t *bias;		/* [out_features], may be NULL */
	int32_t input_zp, output_zp;	/* input_zp in [-128, 127] */
	const int32_t *multiplier;	/* [n_requant] */
	const int32_t *shift;		/* [n_requant], > 0 = right */
	int32_t n_requant;		/* 1 = per tensor, out_features =
					 * per channel */
	int32_t act_min, act_max;	/* within [-128, 127]; ReLU and
					 * ReLU6 are folded in here */
} tmrt_fc_params;

/* out[o] = requantize(bias[o] + sum_i weights[o][i] * (in[i] - input_zp))
 * for one input vector of in_features values. Returns TMRT_ERR_ARG,
 * TMRT_ERR_SHAPE (in_features or out_features outside
 * [1, TMRT_FC_MAX_IN_FEATURES] / >= 1) or TMRT_ERR_PARAM (input_zp, the
 * activation range or n_requant invalid) without writing out. */
TMRT_API tmrt_status tmrt_fully_connected_s8(const tmrt_fc_params *p,
					     const int8_t *in, int8_t *out);

/* ---- Convolution and pooling (NHWC) ---------------------------------- */

/* Dimensions of an NHWC tensor: batch, height, width, channels. */
typedef struct tmrt_dims {
	int32_t n, h, w, c;
} tmrt_dims;

/* Largest kernel_h * kernel_w * (input.c / groups) of a convolution:
 * as for TMRT_FC_MAX_IN_FEATURES, it keeps the int32 accumulator exact
 * (|w * (x - input_zp)| <= 128 * 255 per tap). */
#define TMRT_CONV_MAX_TAPS 65535

/* A 2-D convolution, ONNX Conv semantics (floor division: no ceil mode).
 * Along each axis the output extent must be
 *   out_h = (in_h + pad_top + pad_bottom - dilation_h * (kernel_h - 1)
 *            - 1) / stride_h + 1 >= 1
 * (likewise w with pad_left, pad_right) and equal output.h: the bundle
 * states it so the caller knows the output size, the kernel checks it.
 * Input tap (oh * stride_h - pad_top + i * dilation_h, ...) of output
 * row oh; taps in the padding are the real value 0 (q = input_zp) and
 * add nothing. Pads may be asymmetric and larger than the kernel; the
 * padded extent in_h + pad_top + pad_bottom must fit int32.
 *
 * tmrt_conv2d_s8: grouped convolution; output channel o belongs to group
 * g = o / (output.c / groups) and reads input channels
 * [g * cg, (g + 1) * cg), cg = input.c / groups. Weights OHWI:
 * [output.c][kernel_h][kernel_w][cg] (ONNX OIHW transposed; for groups
 * == input.c and cg == 1 the bytes are ONNX's unchanged).
 *
 * tmrt_depthwise_conv2d_s8: groups == input.c and output.c = input.c *
 * mult (mult = channel multiplier >= 1); output channel o reads input
 * channel o / mult (ONNX's order for group = C). Weights are TFLite's
 * depthwise layout [kernel_h][kernel_w][output.c].
 *
 * out = requantize(bias[o] + sum over taps of w * (in - input_zp)) with
 * requantizer o (or 0 when n_requant is 1); the bias is added in int64
 * and saturated as in tmrt_fully_connected_s8. */
typedef struct tmrt_conv_params {
	tmrt_dims input;		/* n, h, w, c */
	tmrt_dims output;		/* n == input.n; c = output channels */
	int32_t kernel_h, kernel_w;	/* >= 1 */
	int32_t stride_h, stride_w;	/* >= 1 */
	int32_t dilation_h, dilation_w;	/* >= 1 */
	int32_t pad_top, pad_left;	/* >= 0 */
	int32_t pad_bottom, pad_right;	/* >= 0 */
	int32_t groups;			/* divides input.c and output.c */
	const int8_t *weights;		/* see above; zp 0 */
	const int32_t *bias;		/* [output.c], may be NULL */
	int32_t input_zp, output_zp;
	const int32_t *multiplier;	/* [n_requant] */
	const int32_t *shift;		/* [n_requant], > 0 = right */
	int32_t n_requant;		/* 1 = per tensor, output.c = per
					 * channel */
	int32_t act_min, act_max;	/* ReLU, ReLU6 folded in */
} tmrt_conv_params;

/* Both return TMRT_ERR_ARG (a NULL pointer), TMRT_ERR_SHAPE (a dimension,
 * stride, dilation or pad out of range, output dims that do not follow
 * from the input, groups not dividing the channels, more than
 * TMRT_CONV_MAX_TAPS taps, a tensor over INT32_MAX elements) or
 * TMRT_ERR_PARAM (a zero point, the activation range or n_requant)
 * without writing out. in and out must not overlap.
 *
 * Stack: tmrt_conv2d_s8 gathers the windows of up to eight output
 * pixels, as int16, into a 512-byte buffer on the stack so that they
 * share each weight load; with the vectorized loops over it its deepest
 * frame is about 1.2 KiB (gcc -O2; 1.8 KiB with clang). Build libtmrt
 * with -DTMRT_CONV_COL=0 for about 0.3 KiB: one output pixel at a time,
 * the same results, slower (on the host, the buffer doubled the
 * throughput of bench/int8's CNN). */
TMRT_API tmrt_status tmrt_conv2d_s8(const tmrt_conv_params *p,
				    const int8_t *in, int8_t *out);
TMRT_API tmrt_status tmrt_depthwise_conv2d_s8(const tmrt_conv_params *p,
					      const int8_t *in, int8_t *out);

/* Largest pooling window (kernel_h * kernel_w), and largest H * W of a
 * global average: both keep sum(q - input_zp) exact in int32. */
#define TMRT_POOL_MAX_WINDOW 65535
#define TMRT_GLOBAL_POOL_MAX_HW 8388608

/* Max and average pooling, per channel, with the window arithmetic of
 * tmrt_conv_params (output.h and output.w checked the same way; output.n
 * == input.n and output.c == input.c). The output may have its own
 * quantization: multiplier and shift are the requantizer of
 * M = s_in / s_out (>= 0); pass the identity (1073741824, -1) and
 * output_zp == input_zp when input and output share it (TFLite's only
 * case), which is then exact and fast.
 *
 * Max: y = requantize(max q - input_zp, M) (requantization is monotone,
 * so this is the max of the requantized values). ONNX pads MaxPool with
 * -inf: padding never wins, and a window with no tap inside the input
 * (pads as wide as the window, or dilation) gives act_min, the
 * quantized -inf.
 *
 * Average: with A = sum over taps inside the input of (q - input_zp)
 * and n = the taps counted: inside the input, or with count_include_pad
 * inside the padded input (ONNX: padding is a real 0 and counts);
 *   - identity requantizer and equal zero points: y = clamp(RHA((A + n *
 *     input_zp) / n)), RHA rounding half away from zero: TFLite's int8
 *     AVERAGE_POOL_2D (average of the raw int8 values) bit for bit;
 *   - otherwise one rounding only: y = requantize(RHA(A * 2^16 / n), M
 *     with shift + 16). The average keeps 16 fraction bits because a
 *     pooled tensor usually has a narrower range, so M > 1 would
 *     magnify an early rounding;
 *   - n == 0 (a window wholly in padding without count_include_pad):
 *     the real value 0, y = clamp(output_zp).
 * Both return TMRT_ERR_ARG, TMRT_ERR_SHAPE (as for convolution; window
 * over TMRT_POOL_MAX_WINDOW) or TMRT_ERR_PARAM (zero points, activation
 * range, a negative multiplier, count_include_pad not 0 or 1) without
 * writing out. in and out must not overlap. */
typedef struct tmrt_pool_params {
	tmrt_dims input, output;
	int32_t kernel_h, kernel_w;	/* >= 1 */
	int32_t stride_h, stride_w;	/* >= 1 */
	int32_t dilation_h, dilation_w;	/* >= 1 */
	int32_t pad_top, pad_left;	/* >= 0 */
	int32_t pad_bottom, pad_right;	/* >= 0 */
	int32_t count_include_pad;	/* average only: 0 or 1 */
	int32_t input_zp, output_zp;
	int32_t multiplier, shift;	/* M = s_in / s_out */
	int32_t act_min, act_max;
} tmrt_pool_params;

TMRT_API tmrt_status tmrt_max_pool2d_s8(const tmrt_pool_params *p,
					const int8_t *in, int8_t *out);
TMRT_API tmrt_status tmrt_avg_pool2d_s8(const tmrt_pool_params *p,
					const int8_t *in, int8_t *out);

/* Global average pooling: input (N, H, W, C) -> output (N, 1, 1, C),
 * i.e. out[n * C + c]; the average of tmrt_avg_pool2d_s8 over n = H * W
 * (the same two cases, same rounding). H * W at most
 * TMRT_GLOBAL_POOL_MAX_HW. */
typedef struct tmrt_global_pool_params {
	tmrt_dims input;
	int32_t input_zp, output_zp;
	int32_t multiplier, shift;	/* M = s_in / s_out */
	int32_t act_min, act_max;
} tmrt_global_pool_params;

TMRT_API tmrt_status tmrt_global_avg_pool_s8(
	const tmrt_global_pool_params *p, const int8_t *in, int8_t *out);

/* ---- Elementwise and data movement --------------------------------- */

/* Largest left_shift of tmrt_add_params (TFLite's int8 value). */
#define TMRT_ADD_MAX_LEFT_SHIFT 20

/* Two int8 tensors with their own quantization added, TFLite's int8 ADD.
 * Emit time (TFLite's CalculateArithmeticOpData), with s1, s2 the input
 * scales and s_out the output's:
 *   left_shift = 20; twice_max = 2 * max(s1, s2);
 *   input1 = quantize_multiplier(s1 / twice_max)        (<= 0.5)
 *   input2 = quantize_multiplier(s2 / twice_max)        (<= 0.5)
 *   output = quantize_multiplier(twice_max / (2^left_shift * s_out))
 * Kernel, per element (requantize without zero point or clamp for the
 * inputs, TFLite's MultiplyByQuantizedMultiplierSmallerThanOneExp):
 *   a = requantize((in1 - input1_zp) * 2^left_shift, input1)
 *   b = requantize((in2 - input2_zp) * 2^left_shift, input2)
 *   out = requantize(a + b, output) + output_zp, clamped to
 *   [act_min, act_max]   (a + b saturated to int32)
 * Broadcasting: in1 and out hold size elements; in2 holds in2_size, a
 * divisor of size, and element i uses in2[i % in2_size]: numpy's rule
 * when in2's shape is a suffix of in1's. In NHWC a per-channel operand
 * (ONNX [C, 1, 1]) has in2_size = C, a scalar 1, an elementwise operand
 * size. Only in2 broadcasts: ADD commutes, so the emitter swaps the
 * operands (and their zero points and multipliers) when in1 is the
 * smaller. out may be in1, or in2 when in2_size == size. */
typedef struct tmrt_add_params {
	int32_t size;			/* elements of in1 and out, >= 1 */
	int32_t in2_size;		/* divides size */
	int32_t input1_zp, input2_zp;
	int32_t left_shift;		/* 0 ... TMRT_ADD_MAX_LEFT_SHIFT */
	int32_t input1_multiplier, input1_shift;
	int32_t input2_multiplier, input2_shift;
	int32_t output_multiplier, output_shift;
	int32_t output_zp;
	int32_t act_min, act_max;	/* ReLU folded in */
} tmrt_add_params;

/* TMRT_ERR_ARG, TMRT_ERR_SHAPE (size, in2_size) or TMRT_ERR_PARAM (zero
 * points, left_shift, a negative multiplier, activation range) without
 * writing out. */
TMRT_API tmrt_status tmrt_add_s8(const tmrt_add_params *p,
				 const int8_t *in1, const int8_t *in2,
				 int8_t *out);

/* One input of a concatenation: its extent along the axis and its
 * quantization relative to the output's. */
typedef struct tmrt_concat_input {
	int32_t axis_len;		/* >= 1 */
	int32_t zp;			/* the input's zero point */
	int32_t multiplier, shift;	/* M = s_in / s_out (>= 0) */
} tmrt_concat_input;

/* Concatenation along one axis. Input k is viewed as [outer][axis_len_k]
 * [inner], the output as [outer][sum of axis_len][inner]: in NHWC a
 * channel concat (ONNX axis 1 of NCHW) has outer = N * H * W, inner = 1.
 * Each value is requantized to the output: requantize(q - zp, M) +
 * output_zp, clamped to [-128, 127]; an input with the identity
 * requantizer (1073741824, -1) and zp == output_zp is copied (the same
 * bytes). out must not overlap the inputs. Returns TMRT_ERR_ARG (p, in,
 * out, inputs or one in[k] NULL), TMRT_ERR_SHAPE (outer, inner, n_inputs,
 * an axis_len < 1, or the output over INT32_MAX elements) or
 * TMRT_ERR_PARAM (a zero point, a negative multiplier) without writing
 * out. */
typedef struct tmrt_concat_params {
	int32_t outer, inner;		/* >= 1 */
	int32_t n_inputs;		/* >= 1 */
	const tmrt_concat_input *inputs;	/* [n_inputs] */
	int32_t output_zp;
} tmrt_concat_params;

TMRT_API tmrt_status tmrt_concat_s8(const tmrt_concat_params *p,
				    const int8_t *const *in, int8_t *out);

/* A 256-entry table lookup (sigmoid, tanh, any function of one int8):
 * out[i] = table[(uint8_t)(in[i] + 128)]. Emit time, per QUANT.md: entry
 * (q + 128) = clamp(lround(f(s_in * (q - zp_in)) / s_out) + zp_out,
 * -128, 127); sigmoid outputs are (1/256, -128), tanh (1/128, 0). in and
 * out may be the same buffer. TMRT_ERR_ARG or TMRT_ERR_SHAPE (size < 1)
 * without writing out. */
typedef struct tmrt_lut_params {
	int32_t size;			/* elements */
	const int8_t *table;		/* [256] */
} tmrt_lut_params;

TMRT_API tmrt_status tmrt_lut_s8(const tmrt_lut_params *p,
				 const int8_t *in, int8_t *out);

/* Integer softmax (QUANT.md). The tensor is viewed as [outer][len]
 * [inner], softmax over len: element (o, k, i) is at (o * len + k) *
 * inner + i. In NHWC the channel softmax has inner = 1 and outer = N * H
 * * W; a vector of logits is outer = inner = 1. Per row, m = max q and
 *   E_k = exp_table[m - q_k],  S = sum of E_k (int64),
 *   y_k = clamp(floor((E_k * 256 + floor(S / 2)) / S) + output_zp,
 *               -128, 127),
 * i.e. the output scale is 1/256 (output_zp -128 per QUANT.md). The table
 * is built at emit time from the input scale: exp_table[d] =
 * lround(exp(-d * s_in) * 2^30), d = 0 ... 255 (Q30, exp_table[0] =
 * 2^30). in and out may be the same buffer. Returns TMRT_ERR_ARG,
 * TMRT_ERR_SHAPE (a dimension < 1, over INT32_MAX elements) or
 * TMRT_ERR_PARAM (output_zp, an entry outside [0, 2^30], exp_table[0]
 * == 0) without writing out. */
typedef struct tmrt_softmax_params {
	int32_t outer, len, inner;	/* >= 1 */
	const int32_t *exp_table;	/* [256], Q30 */
	int32_t output_zp;
} tmrt_softmax_params;

TMRT_API tmrt_status tmrt_softmax_s8(const tmrt_softmax_params *p,
				     const int8_t *in, int8_t *out);

#ifdef __cplusplus
}
#endif

#endif
