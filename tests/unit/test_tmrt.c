/* tmpipe tests — libtmrt's fixed-point arithmetic and the int8 fully
 * connected kernel, against hand-computed values and the XOR net of
 * QUANT.md (whose int8 logits are -128, 127, 127, -126). */
#include "config.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

#include <tmrt/tmrt.h>

#include "runner.h"

#define LEN(a) (sizeof(a) / sizeof((a)[0]))

static void
test_srdhm(void)
{
	/* The one saturating case. */
	CU_ASSERT_EQUAL(tmrt_srdhm(INT32_MIN, INT32_MIN), INT32_MAX);
	/* (2^31 - 1)^2 / 2^31 = 2^31 - 2 + 2^-31. */
	CU_ASSERT_EQUAL(tmrt_srdhm(INT32_MAX, INT32_MAX), 2147483646);
	CU_ASSERT_EQUAL(tmrt_srdhm(INT32_MIN, INT32_MAX), -2147483647);
	CU_ASSERT_EQUAL(tmrt_srdhm(INT32_MAX, INT32_MIN), -2147483647);
	CU_ASSERT_EQUAL(tmrt_srdhm(1 << 30, 1 << 30), 1 << 29);
	CU_ASSERT_EQUAL(tmrt_srdhm(INT32_MIN, 1 << 30), -(1 << 30));
	CU_ASSERT_EQUAL(tmrt_srdhm(0, INT32_MIN), 0);
	CU_ASSERT_EQUAL(tmrt_srdhm(12345, 0), 0);
	/* Ties (x.5) go towards +infinity: gemmlowp's 1 - 2^30 nudge. */
	CU_ASSERT_EQUAL(tmrt_srdhm(1, 1 << 30), 1);		/* 0.5 */
	CU_ASSERT_EQUAL(tmrt_srdhm(-1, 1 << 30), 0);		/* -0.5 */
	CU_ASSERT_EQUAL(tmrt_srdhm(3, 1 << 30), 2);		/* 1.5 */
	CU_ASSERT_EQUAL(tmrt_srdhm(-3, 1 << 30), -1);		/* -1.5 */
	/* Non-ties round to nearest. */
	CU_ASSERT_EQUAL(tmrt_srdhm(1, (1 << 30) - 1), 0);
	CU_ASSERT_EQUAL(tmrt_srdhm(-1, (1 << 30) - 1), 0);
	CU_ASSERT_EQUAL(tmrt_srdhm(1, (1 << 30) + 1), 1);
	CU_ASSERT_EQUAL(tmrt_srdhm(-1, (1 << 30) + 1), -1);
	CU_ASSERT_EQUAL(tmrt_srdhm(-5, 1 << 30), -2);		/* -2.5 */
	CU_ASSERT_EQUAL(tmrt_srdhm(-7, 1610612736), -5);	/* -5.25 */
	/* The XOR fc1 accumulators times 1082196484 / 2^31. */
	CU_ASSERT_EQUAL(tmrt_srdhm(64770, 1082196484), 32640);
	CU_ASSERT_EQUAL(tmrt_srdhm(32385, 1082196484), 16320);
	CU_ASSERT_EQUAL(tmrt_srdhm(-32385, 1082196484), -16320);
}

static void
test_rdbpot(void)
{
	/* Ties away from zero. */
	CU_ASSERT_EQUAL(tmrt_rdbpot(-3, 1), -2);
	CU_ASSERT_EQUAL(tmrt_rdbpot(3, 1), 2);
	CU_ASSERT_EQUAL(tmrt_rdbpot(1, 1), 1);
	CU_ASSERT_EQUAL(tmrt_rdbpot(-1, 1), -1);
	CU_ASSERT_EQUAL(tmrt_rdbpot(-6, 2), -2);		/* -1.5 */
	CU_ASSERT_EQUAL(tmrt_rdbpot(6, 2), 2);
	CU_ASSERT_EQUAL(tmrt_rdbpot(-16320, 7), -128);		/* -127.5 */
	CU_ASSERT_EQUAL(tmrt_rdbpot(16320, 7), 128);
	/* Non-ties. */
	CU_ASSERT_EQUAL(tmrt_rdbpot(-5, 2), -1);		/* -1.25 */
	CU_ASSERT_EQUAL(tmrt_rdbpot(5, 2), 1);
	CU_ASSERT_EQUAL(tmrt_rdbpot(-7, 2), -2);		/* -1.75 */
	CU_ASSERT_EQUAL(tmrt_rdbpot(7, 2), 2);
	CU_ASSERT_EQUAL(tmrt_rdbpot(-4, 2), -1);
	CU_ASSERT_EQUAL(tmrt_rdbpot(32640, 7), 255);
	/* Exponent 0 and the extremes. */
	CU_ASSERT_EQUAL(tmrt_rdbpot(-7, 0), -7);
	CU_ASSERT_EQUAL(tmrt_rdbpot(INT32_MIN, 0), INT32_MIN);
	CU_ASSERT_EQUAL(tmrt_rdbpot(INT32_MAX, 1), 1073741824);
	CU_ASSERT_EQUAL(tmrt_rdbpot(INT32_MIN, 1), -1073741824);
	CU_ASSERT_EQUAL(tmrt_rdbpot(INT32_MAX, 31), 1);
	CU_ASSERT_EQUAL(tmrt_rdbpot(INT32_MIN, 31), -1);
	CU_ASSERT_EQUAL(tmrt_rdbpot(INT32_MIN, 30), -2);
	CU_ASSERT_EQUAL(tmrt_rdbpot(1 << 29, 31), 0);		/* 0.25 */
	CU_ASSERT_EQUAL(tmrt_rdbpot(-(1 << 30), 31), -1);	/* -0.5 */
	CU_ASSERT_EQUAL(tmrt_rdbpot(1 << 30, 31), 1);		/* 0.5 */
	/* Out-of-range exponents are defined, not UB. */
	CU_ASSERT_EQUAL(tmrt_rdbpot(-7, -3), -7);
	CU_ASSERT_EQUAL(tmrt_rdbpot(INT32_MIN, 32), -1);	/* -0.5 */
	CU_ASSERT_EQUAL(tmrt_rdbpot(INT32_MIN + 1, 32), 0);
	CU_ASSERT_EQUAL(tmrt_rdbpot(INT32_MAX, 32), 0);
	CU_ASSERT_EQUAL(tmrt_rdbpot(INT32_MIN, 33), 0);
	CU_ASSERT_EQUAL(tmrt_rdbpot(INT32_MAX, 100), 0);
}

static void
test_requantize_right(void)
{
	/* XOR fc1: M = 1/254 as (1082196484, 7), output zp -128. */
	CU_ASSERT_EQUAL(tmrt_requantize(64770, 1082196484, 7, -128, -128,
					127), 127);
	CU_ASSERT_EQUAL(tmrt_requantize(32385, 1082196484, 7, -128, -128,
					127), 0);
	CU_ASSERT_EQUAL(tmrt_requantize(0, 1082196484, 7, -128, -128, 127),
			-128);
	/* -32385 -> -127.5 -> -128, + zp -> clamped. */
	CU_ASSERT_EQUAL(tmrt_requantize(-32385, 1082196484, 7, -128, -128,
					127), -128);
	CU_ASSERT_EQUAL(tmrt_requantize(-32385, 1082196484, 7, 0, INT32_MIN,
					INT32_MAX), -128);
	/* 0.75 as (1610612736, 0). */
	CU_ASSERT_EQUAL(tmrt_requantize(100, 1610612736, 0, 3, -128, 127),
			78);
	/* The largest right shift the host produces (M = 2^-31). */
	CU_ASSERT_EQUAL(tmrt_requantize(INT32_MAX, 1073741824, 30, 0,
					INT32_MIN, INT32_MAX), 1);
	CU_ASSERT_EQUAL(tmrt_requantize(INT32_MIN, 1073741824, 30, 0,
					INT32_MIN, INT32_MAX), -1);
}

static void
test_requantize_left(void)
{
	/* M = 1.0 as (2^30, -1): the identity below saturation. */
	CU_ASSERT_EQUAL(tmrt_requantize(12345, 1073741824, -1, 0, INT32_MIN,
					INT32_MAX), 12345);
	CU_ASSERT_EQUAL(tmrt_requantize(-12345, 1073741824, -1, 0, INT32_MIN,
					INT32_MAX), -12345);
	/* M = 3.0 as (1610612736, -2). */
	CU_ASSERT_EQUAL(tmrt_requantize(100, 1610612736, -2, 0, INT32_MIN,
					INT32_MAX), 300);
	CU_ASSERT_EQUAL(tmrt_requantize(-7, 1610612736, -2, 0, INT32_MIN,
					INT32_MAX), -21);
	CU_ASSERT_EQUAL(tmrt_requantize(100, 1610612736, -2, -1, -128, 127),
			127);
	CU_ASSERT_EQUAL(tmrt_requantize(-100, 1610612736, -2, -1, -128, 127),
			-128);
	/* acc * 2^left overflows int32: saturated in int64, no UB
	 * (UBSan would stop the test here otherwise). */
	CU_ASSERT_EQUAL(tmrt_requantize(INT32_MAX, 1610612736, -2, 0,
					INT32_MIN, INT32_MAX), 1610612735);
	CU_ASSERT_EQUAL(tmrt_requantize(INT32_MIN, 1610612736, -2, 0,
					INT32_MIN, INT32_MAX), -1610612736);
	CU_ASSERT_EQUAL(tmrt_requantize(1 << 20, 1073741824, -31, 0,
					INT32_MIN, INT32_MAX), 1073741824);
	CU_ASSERT_EQUAL(tmrt_requantize(-1, 1073741824, -31, 0, INT32_MIN,
					INT32_MAX), -1073741824);
	CU_ASSERT_EQUAL(tmrt_requantize(INT32_MAX, 1073741824, -31, 0, -128,
					127), 127);
	/* Shifts past the host's range stay defined. */
	CU_ASSERT_EQUAL(tmrt_requantize(1, 1073741824, INT32_MIN, 0,
					INT32_MIN, INT32_MAX), 1073741824);
	CU_ASSERT_EQUAL(tmrt_requantize(-1, 1073741824, -40, 0, INT32_MIN,
					INT32_MAX), -1073741824);
	CU_ASSERT_EQUAL(tmrt_requantize(0, 1073741824, INT32_MIN, 5, -128,
					127), 5);
	CU_ASSERT_EQUAL(tmrt_requantize(INT32_MIN, 1073741824, INT32_MAX, 0,
					INT32_MIN, INT32_MAX), 0);
}

static void
test_requantize_zp_overflow(void)
{
	/* The zero point is added in int64: no int32 overflow. */
	CU_ASSERT_EQUAL(tmrt_requantize(INT32_MAX, INT32_MAX, 0, INT32_MAX,
					INT32_MIN, INT32_MAX), INT32_MAX);
	CU_ASSERT_EQUAL(tmrt_requantize(INT32_MIN, INT32_MAX, 0, INT32_MIN,
					INT32_MIN, INT32_MAX), INT32_MIN);
}

/* The XOR net in int8, as tmpipe quantizes it (QUANT.md). */
static const int8_t xor_w1[8] = { 127, 127, 127, 127, 127, 127, 127, 127 };
static const int32_t xor_b1[4] = { 0, -32385, 0, -32385 };
static const int8_t xor_w2[4] = { 64, -127, 64, -127 };
static const int32_t xor_b2[1] = { -8096 };
static const int32_t xor_m1[1] = { 1082196484 }, xor_s1[1] = { 7 };
static const int32_t xor_m2[1] = { 1082196484 }, xor_s2[1] = { 5 };

static const tmrt_fc_params xor_fc1 = {
	2, 4, xor_w1, xor_b1, -128, -128, xor_m1, xor_s1, 1,
	/* ReLU folded into the clamp: qmin = zp_out = -128. */
	-128, 127
};
static const tmrt_fc_params xor_fc2 = {
	4, 1, xor_w2, xor_b2, -128, -1, xor_m2, xor_s2, 1, -128, 127
};

/* Input quantization with (1/255, -128), as the host would do it. */
static int8_t
quantize_input(double x)
{
	long q = lround(x * 255.0) - 128;

	return (int8_t)(q < -128 ? -128 : q > 127 ? 127 : q);
}

static void
test_xor(void)
{
	static const double x[4][2] = { { 0, 0 }, { 0, 1 }, { 1, 0 },
					{ 1, 1 } };
	static const int8_t want_in[4][2] = { { -128, -128 }, { -128, 127 },
					      { 127, -128 }, { 127, 127 } };
	static const int8_t want_hidden[4][4] = {
		{ -128, -128, -128, -128 },
		{ 0, -128, 0, -128 },
		{ 0, -128, 0, -128 },
		{ 127, 0, 127, 0 },
	};
	static const int8_t want_logit[4] = { -128, 127, 127, -126 };
	size_t i;

	for (i = 0; i < 4; i++) {
		int8_t in[2], hidden[4], logit[1] = { 0 };

		in[0] = quantize_input(x[i][0]);
		in[1] = quantize_input(x[i][1]);
		CU_ASSERT_EQUAL(in[0], want_in[i][0]);
		CU_ASSERT_EQUAL(in[1], want_in[i][1]);
		CU_ASSERT_EQUAL(tmrt_fully_connected_s8(&xor_fc1, in, hidden),
				TMRT_OK);
		CU_ASSERT_EQUAL(memcmp(hidden, want_hidden[i], 4), 0);
		CU_ASSERT_EQUAL(tmrt_fully_connected_s8(&xor_fc2, hidden,
							logit), TMRT_OK);
		CU_ASSERT_EQUAL(logit[0], want_logit[i]);
	}
}

static void
test_fc_per_channel(void)
{
	static const int8_t w[4] = { 1, 2, -3, 4 };
	static const int8_t in[2] = { 10, -20 };
	/* Channel 0: M = 1.0; channel 1: M = 0.5. */
	static const int32_t m[2] = { 1073741824, 1073741824 };
	static const int32_t s[2] = { -1, 0 };
	static const int32_t m1[1] = { 1073741824 }, s1[1] = { -1 };
	tmrt_fc_params p = { 2, 2, w, NULL, 0, 5, m, s, 2, -128, 127 };
	int8_t out[2];

	/* Sums -30 and -110, no bias. */
	CU_ASSERT_EQUAL(tmrt_fully_connected_s8(&p, in, out), TMRT_OK);
	CU_ASSERT_EQUAL(out[0], -25);
	CU_ASSERT_EQUAL(out[1], -50);

	p.multiplier = m1;
	p.shift = s1;
	p.n_requant = 1;
	CU_ASSERT_EQUAL(tmrt_fully_connected_s8(&p, in, out), TMRT_OK);
	CU_ASSERT_EQUAL(out[0], -25);
	CU_ASSERT_EQUAL(out[1], -105);

	/* The input zero point is subtracted before the product. */
	p.input_zp = 10;
	CU_ASSERT_EQUAL(tmrt_fully_connected_s8(&p, in, out), TMRT_OK);
	CU_ASSERT_EQUAL(out[0], -60 + 5);
	CU_ASSERT_EQUAL(out[1], -120 + 5);
}

static void
test_fc_largest(void)
{
	static int8_t w[TMRT_FC_MAX_IN_FEATURES], in[TMRT_FC_MAX_IN_FEATURES];
	static const int32_t m[1] = { 1073741824 }, s[1] = { 24 };
	static const int32_t bias_min[1] = { INT32_MIN };
	tmrt_fc_params p = { TMRT_FC_MAX_IN_FEATURES, 1, w, NULL, -128, 0, m,
			     s, 1, -128, 127 };
	int8_t out[1];

	/* Every term -128 * 255: the sum -2139062400 just fits int32. */
	memset(w, -128, sizeof w);
	memset(in, 127, sizeof in);
	/* -2139062400 / 2^25 = -63.748 */
	CU_ASSERT_EQUAL(tmrt_fully_connected_s8(&p, in, out), TMRT_OK);
	CU_ASSERT_EQUAL(out[0], -64);
	/* A bias that would overflow it saturates instead. */
	p.bias = bias_min;
	CU_ASSERT_EQUAL(tmrt_fully_connected_s8(&p, in, out), TMRT_OK);
	CU_ASSERT_EQUAL(out[0], -64);
	p.in_features = TMRT_FC_MAX_IN_FEATURES + 1;
	CU_ASSERT_EQUAL(tmrt_fully_connected_s8(&p, in, out), TMRT_ERR_SHAPE);
}

static void
test_fc_bad_args(void)
{
	static const int8_t w[4] = { 1, 2, 3, 4 };
	static const int8_t in[2] = { 1, 2 };
	static const int32_t m[1] = { 1073741824 }, s[1] = { 0 };
	const tmrt_fc_params good = { 2, 2, w, NULL, 0, 0, m, s, 1, -128,
				      127 };
	tmrt_fc_params p;
	int8_t out[2] = { 42, 42 };

	CU_ASSERT_EQUAL(tmrt_fully_connected_s8(NULL, in, out), TMRT_ERR_ARG);
	CU_ASSERT_EQUAL(tmrt_fully_connected_s8(&good, NULL, out),
			TMRT_ERR_ARG);
	CU_ASSERT_EQUAL(tmrt_fully_connected_s8(&good, in, NULL),
			TMRT_ERR_ARG);
	p = good;
	p.weights = NULL;
	CU_ASSERT_EQUAL(tmrt_fully_connected_s8(&p, in, out), TMRT_ERR_ARG);
	p = good;
	p.multiplier = NULL;
	CU_ASSERT_EQUAL(tmrt_fully_connected_s8(&p, in, out), TMRT_ERR_ARG);
	p = good;
	p.shift = NULL;
	CU_ASSERT_EQUAL(tmrt_fully_connected_s8(&p, in, out), TMRT_ERR_ARG);
	p = good;
	p.in_features = 0;
	CU_ASSERT_EQUAL(tmrt_fully_connected_s8(&p, in, out), TMRT_ERR_SHAPE);
	p = good;
	p.out_features = -1;
	CU_ASSERT_EQUAL(tmrt_fully_connected_s8(&p, in, out), TMRT_ERR_SHAPE);
	p = good;
	p.input_zp = 128;
	CU_ASSERT_EQUAL(tmrt_fully_connected_s8(&p, in, out), TMRT_ERR_PARAM);
	p = good;
	p.input_zp = -129;
	CU_ASSERT_EQUAL(tmrt_fully_connected_s8(&p, in, out), TMRT_ERR_PARAM);
	p = good;
	p.act_min = 10;
	p.act_max = 9;
	CU_ASSERT_EQUAL(tmrt_fully_connected_s8(&p, in, out), TMRT_ERR_PARAM);
	p = good;
	p.act_max = 128;
	CU_ASSERT_EQUAL(tmrt_fully_connected_s8(&p, in, out), TMRT_ERR_PARAM);
	p = good;
	p.act_min = -129;
	CU_ASSERT_EQUAL(tmrt_fully_connected_s8(&p, in, out), TMRT_ERR_PARAM);
	p = good;
	p.n_requant = 3;
	CU_ASSERT_EQUAL(tmrt_fully_connected_s8(&p, in, out), TMRT_ERR_PARAM);
	p = good;
	p.n_requant = 0;
	CU_ASSERT_EQUAL(tmrt_fully_connected_s8(&p, in, out), TMRT_ERR_PARAM);
	/* A rejected call writes nothing. */
	CU_ASSERT_EQUAL(out[0], 42);
	CU_ASSERT_EQUAL(out[1], 42);
	CU_ASSERT_EQUAL(tmrt_fully_connected_s8(&good, in, out), TMRT_OK);
}

static const tm_test_case cases[] = {
	{ "srdhm", test_srdhm },
	{ "rdbpot", test_rdbpot },
	{ "requantize right shift", test_requantize_right },
	{ "requantize left shift saturates", test_requantize_left },
	{ "requantize zero point in int64", test_requantize_zp_overflow },
	{ "XOR int8 run", test_xor },
	{ "fully connected per channel", test_fc_per_channel },
	{ "fully connected largest input", test_fc_largest },
	{ "fully connected bad arguments", test_fc_bad_args },
	{ NULL, NULL }
};

int
main(void)
{
	if (tm_test_add_suite("tmrt", cases))
		return 99;
	return tm_test_run();
}
