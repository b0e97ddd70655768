/* tmpipe tests — quantization arithmetic (core/quant.c) against the known
 * answers in QUANT.md: the TinyMind importer on the textbook XOR net, the
 * TFLite QuantizeMultiplier values and hand-computed edge cases. */
#include "config.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

#include <tmpipe/quant.h>

#include "runner.h"

#define LEN(a) (sizeof(a) / sizeof((a)[0]))

/* The XOR net of QUANT.md. */
static const float fc1_w[8] = { 1, 1, 1, 1, 1, 1, 1, 1 };
static const float fc1_b[4] = { 0, -1, 0, -1 };
static const float fc2_w[4] = { 2, -4, 2, -4 };
static const float fc2_b[1] = { -2 };

/* Runs tm_quant_affine and checks the exact double scale and zp. */
static void
check_affine(double lo, double hi, double want_scale, int32_t want_zp)
{
	tm_error err;
	double scale = -1.0;
	int32_t zp = 12345;

	tm_error_clear(&err);
	CU_ASSERT_EQUAL(tm_quant_affine(lo, hi, &scale, &zp, &err), TM_OK);
	CU_ASSERT_EQUAL(err.code, TM_OK);
	CU_ASSERT(scale == want_scale);
	CU_ASSERT_EQUAL(zp, want_zp);
}

static void
check_affine_fails(double lo, double hi, tm_status code, const char *msg)
{
	tm_error err;
	double scale = -1.0;
	int32_t zp = 12345;

	tm_error_clear(&err);
	CU_ASSERT_EQUAL(tm_quant_affine(lo, hi, &scale, &zp, &err), code);
	CU_ASSERT_EQUAL(err.code, code);
	CU_ASSERT_STRING_EQUAL(err.msg, msg);
	/* A failed call writes nothing. */
	CU_ASSERT(scale == -1.0);
	CU_ASSERT_EQUAL(zp, 12345);
}

static void
check_multiplier(double m, int32_t want_q, int32_t want_shift)
{
	tm_error err;
	int32_t q = 7, shift = 7;

	tm_error_clear(&err);
	CU_ASSERT_EQUAL(tm_quantize_multiplier(m, &q, &shift, &err), TM_OK);
	CU_ASSERT_EQUAL(err.code, TM_OK);
	CU_ASSERT_EQUAL(q, want_q);
	CU_ASSERT_EQUAL(shift, want_shift);
}

static void
check_multiplier_fails(double m, tm_status code, const char *msg)
{
	tm_error err;
	int32_t q = 7, shift = 7;

	tm_error_clear(&err);
	CU_ASSERT_EQUAL(tm_quantize_multiplier(m, &q, &shift, &err), code);
	CU_ASSERT_EQUAL(err.code, code);
	CU_ASSERT_STRING_EQUAL(err.msg, msg);
	CU_ASSERT_EQUAL(q, 7);
	CU_ASSERT_EQUAL(shift, 7);
}

static void
test_multiplier_known(void)
{
	check_multiplier(1.0, 1073741824, -1);
	check_multiplier(0.75, 1610612736, 0);
	check_multiplier(3.0, 1610612736, -2);
	check_multiplier(1.0 / 254, 1082196484, 7);
	check_multiplier(2.0 / 127, 1082196484, 5);
	check_multiplier(0.5, 1073741824, 0);
	/* The largest multipliers still accepted. */
	check_multiplier(0x1p30, 1073741824, -31);
	check_multiplier(2147483647.0, 2147483647, -31);
}

static void
test_multiplier_rounds_up_to_pow2(void)
{
	/* frac = 1 - 2^-33 rounds to q = 2^31: becomes 2^30, e + 1. */
	check_multiplier(1.0 - 0x1p-33, 1073741824, -1);
	check_multiplier(0.5 - 0x1p-34, 1073741824, 0);
}

static void
test_multiplier_flush(void)
{
	check_multiplier(0.0, 0, 0);
	check_multiplier(0x1p-32, 0, 0);
	check_multiplier(nextafter(0x1p-31, 0.0), 0, 0);
	check_multiplier(5e-324, 0, 0);
	/* 2^-31 itself is kept: the largest right shift is 30. */
	check_multiplier(0x1p-31, 1073741824, 30);
}

static void
test_multiplier_errors(void)
{
	check_multiplier_fails(NAN, TM_ERR_NUMERIC,
			       "requantization multiplier is NaN");
	check_multiplier_fails(-1.0, TM_ERR_INVALID,
			       "requantization multiplier -1 is negative");
	check_multiplier_fails(-0x1p-40, TM_ERR_INVALID,
			       "requantization multiplier "
			       "-9.0949470177292824e-13 is negative");
	check_multiplier_fails(0x1p31, TM_ERR_NUMERIC,
			       "requantization multiplier 2147483648 is too "
			       "large (must be < 2^31)");
	check_multiplier_fails(INFINITY, TM_ERR_NUMERIC,
			       "requantization multiplier inf is too large "
			       "(must be < 2^31)");
	/* Below 2^31 but its Q31 form rounds up to 2^31. */
	check_multiplier_fails(2147483647.5, TM_ERR_NUMERIC,
			       "requantization multiplier 2147483647.5 is too "
			       "large (must be < 2^31)");
	check_multiplier_fails(nextafter(0x1p31, 0.0), TM_ERR_NUMERIC,
			       "requantization multiplier "
			       "2147483647.9999998 is too large (must be < "
			       "2^31)");
}

static void
test_affine_xor(void)
{
	check_affine(0.0, 1.0, 1.0 / 255, -128);	/* input */
	check_affine(-1.0, 2.0, 3.0 / 255, -43);	/* fc1 pre-ReLU */
	check_affine(0.0, 2.0, 2.0 / 255, -128);	/* hidden */
	check_affine(-2.0, 2.0, 4.0 / 255, -1);		/* logit */
}

static void
test_affine_zero_range(void)
{
	/* Never scale 0, never NaN. */
	check_affine(0.0, 0.0, 1.0, -128);
	check_affine(-0.0, 0.0, 1.0, -128);
	check_affine(-0.0, -0.0, 1.0, -128);
}

static void
test_affine_widened(void)
{
	check_affine(0.5, 2.0, 2.0 / 255, -128);
	check_affine(3.0, 3.0, 3.0 / 255, -128);
	check_affine(-3.0, -1.0, 3.0 / 255, 127);
	check_affine(-1.0, -1.0, 1.0 / 255, 127);
}

static void
test_affine_symmetric(void)
{
	/* -128 - lo * 255 / (hi - lo) is exactly -0.5: lround gives -1,
	 * whatever t is (the header's promise). */
	check_affine(-1.0, 1.0, 2.0 / 255, -1);
	check_affine(-0.1, 0.1, 0.2 / 255, -1);
	check_affine(-3.7, 3.7, 7.4 / 255, -1);
	check_affine(-(double)0.3f, (double)0.3f,
		     ((double)0.3f + (double)0.3f) / 255, -1);
	/* Doubles for which -128 - lo * 255 / (hi - lo) evaluated in
	 * double is -0.49999999999998579 or -0.50000000000001421. */
	check_affine(-9.8124512151520647e+25, 9.8124512151520647e+25,
		     2 * 9.8124512151520647e+25 / 255, -1);
	check_affine(-5.2059982603337626e+18, 5.2059982603337626e+18,
		     2 * 5.2059982603337626e+18 / 255, -1);
	check_affine(-1.3062093988956979e+19, 1.3062093988956979e+19,
		     2 * 1.3062093988956979e+19 / 255, -1);
}

static void
test_affine_rounding(void)
{
	/* Other ties: -127.5 goes down, 126.5 up (away from zero). */
	check_affine(-1.0, 509.0, 510.0 / 255, -128);
	check_affine(-509.0, 1.0, 510.0 / 255, 127);
	check_affine(-3.0, 1.0, 4.0 / 255, 63);		/* 63.25 */
	check_affine(-1.0, 3.0, 4.0 / 255, -64);	/* -64.25 */
	check_affine(-2.0, 1.0, 3.0 / 255, 42);		/* 42 exactly */
	check_affine(-1e-6, 1.0, (1.0 + 1e-6) / 255, -128);
	check_affine(-1.0, 1e-6, (1.0 + 1e-6) / 255, 127);
}

static void
test_affine_rejects(void)
{
	check_affine_fails(NAN, 1.0, TM_ERR_NUMERIC,
			   "activation range [nan, 1] is not finite");
	check_affine_fails(0.0, NAN, TM_ERR_NUMERIC,
			   "activation range [0, nan] is not finite");
	check_affine_fails(-INFINITY, 1.0, TM_ERR_NUMERIC,
			   "activation range [-inf, 1] is not finite");
	check_affine_fails(0.0, INFINITY, TM_ERR_NUMERIC,
			   "activation range [0, inf] is not finite");
	check_affine_fails(2.0, 1.0, TM_ERR_INVALID,
			   "activation range [2, 1] has min > max");
	check_affine_fails(-1.0, -2.5, TM_ERR_INVALID,
			   "activation range [-1, -2.5] has min > max");
	/* Scales float32 cannot hold. */
	check_affine_fails(-1e300, 1e300, TM_ERR_NUMERIC,
			   "activation range [-1.0000000000000001e+300, "
			   "1.0000000000000001e+300] gives scale "
			   "7.8431372549019614e+297, outside float32's normal "
			   "range");
	check_affine_fails(0.0, 1e-40, TM_ERR_NUMERIC,
			   "activation range [0, 9.9999999999999993e-41] "
			   "gives scale 3.9215686274509799e-43, outside "
			   "float32's normal range");
}

static void
test_affine_null_err(void)
{
	double scale = 0.0;
	int32_t zp = 0;

	/* err is optional: the code alone still reports the failure. */
	CU_ASSERT_EQUAL(tm_quant_affine(1.0, 0.0, &scale, &zp, NULL),
			TM_ERR_INVALID);
	CU_ASSERT_EQUAL(tm_quant_affine(0.0, 1.0, &scale, &zp, NULL), TM_OK);
	CU_ASSERT(scale == 1.0 / 255);
}

static void
test_weight_scale(void)
{
	static const float zeros[3] = { 0, -0.0f, 0 };
	static const float neg[3] = { 0.5f, -2.0f, 1.0f };

	CU_ASSERT(tm_quant_weight_scale(fc1_w, LEN(fc1_w)) == 1.0 / 127);
	CU_ASSERT(tm_quant_weight_scale(fc2_w, LEN(fc2_w)) == 4.0 / 127);
	CU_ASSERT(tm_quant_weight_scale(zeros, LEN(zeros)) == 1.0);
	CU_ASSERT(tm_quant_weight_scale(zeros, 0) == 1.0);
	CU_ASSERT(tm_quant_weight_scale(neg, LEN(neg)) == 2.0 / 127);
}

static void
test_weights_xor(void)
{
	static const int8_t want2[4] = { 64, -127, 64, -127 };
	int8_t q1[8], q2[4];
	size_t i;

	tm_quant_weights(fc1_w, LEN(fc1_w),
			 tm_quant_weight_scale(fc1_w, LEN(fc1_w)), q1);
	for (i = 0; i < LEN(q1); i++)
		CU_ASSERT_EQUAL(q1[i], 127);
	/* 2 / (4 / 127) is exactly 63.5 in double: rounds away to 64. */
	CU_ASSERT((double)fc2_w[0] / (4.0 / 127) == 63.5);
	tm_quant_weights(fc2_w, LEN(fc2_w),
			 tm_quant_weight_scale(fc2_w, LEN(fc2_w)), q2);
	CU_ASSERT_EQUAL(memcmp(q2, want2, sizeof want2), 0);
}

static void
test_weights_ties_and_clamp(void)
{
	static const float w[8] = { 0.5f, -0.5f, 1.5f, -1.5f, 0.49f, 300, -300,
				    NAN };
	static const int8_t want[8] = { 1, -1, 2, -2, 0, 127, -127, 0 };
	int8_t q[8];

	/* Scale 1: the weights are the rounding inputs; ties go away
	 * from zero, out-of-range values clamp to the symmetric grid and
	 * -128 is never produced. */
	tm_quant_weights(w, LEN(w), 1.0, q);
	CU_ASSERT_EQUAL(memcmp(q, want, sizeof want), 0);
}

static void
check_bias(const float *b, size_t n, double s_in, double s_w,
	   const int32_t *want)
{
	tm_error err;
	int32_t q[8];
	size_t i;

	tm_error_clear(&err);
	CU_ASSERT_EQUAL(tm_quant_bias(b, n, s_in, s_w, q, &err), TM_OK);
	CU_ASSERT_EQUAL(err.code, TM_OK);
	for (i = 0; i < n; i++)
		CU_ASSERT_EQUAL(q[i], want[i]);
}

static void
test_bias_xor(void)
{
	static const int32_t want1[4] = { 0, -32385, 0, -32385 };
	static const int32_t want2[1] = { -8096 };

	check_bias(fc1_b, LEN(fc1_b), 1.0 / 255, 1.0 / 127, want1);
	/* -2 / ((2 / 255) * (4 / 127)) = -8096.25. */
	check_bias(fc2_b, LEN(fc2_b), 2.0 / 255, 4.0 / 127, want2);
}

static void
test_bias_ties(void)
{
	static const float b[4] = { 2.5f, -2.5f, 0.5f, -0.5f };
	static const int32_t want[4] = { 3, -3, 1, -1 };

	check_bias(b, LEN(b), 1.0, 1.0, want);
}

static void
test_bias_saturation(void)
{
	static const float b[5] = { 1.0f, 1e10f, 2147483520.0f, -1e10f,
				    -2147483648.0f };
	static const int32_t want[5] = { 1, INT32_MAX, 2147483520, INT32_MIN,
					 INT32_MIN };
	static const float b2[2] = { 0.0f, 2147483648.0f };
	tm_error err;
	int32_t q[5];
	size_t i;

	tm_error_clear(&err);
	CU_ASSERT_EQUAL(tm_quant_bias(b, LEN(b), 1.0, 1.0, q, &err),
			TM_ERR_NUMERIC);
	CU_ASSERT_EQUAL(err.code, TM_ERR_NUMERIC);
	CU_ASSERT_STRING_EQUAL(err.msg, "bias[1] = 1e+10 does not fit int32 "
				       "at scale 1 (saturated to 2147483647; "
				       "2 values affected)");
	/* Every value is still filled in. */
	for (i = 0; i < LEN(b); i++)
		CU_ASSERT_EQUAL(q[i], want[i]);

	/* 2^31 is just past INT32_MAX. */
	tm_error_clear(&err);
	CU_ASSERT_EQUAL(tm_quant_bias(b2, LEN(b2), 1.0, 1.0, q, &err),
			TM_ERR_NUMERIC);
	CU_ASSERT_STRING_EQUAL(err.msg, "bias[1] = 2.14748365e+09 does not "
				       "fit int32 at scale 1 (saturated to "
				       "2147483647; 1 value affected)");
	CU_ASSERT_EQUAL(q[0], 0);
	CU_ASSERT_EQUAL(q[1], INT32_MAX);

	/* A realistic cause: a large bias over tiny scales. */
	tm_error_clear(&err);
	CU_ASSERT_EQUAL(tm_quant_bias(fc2_b, 1, 1e-6, 1e-6, q, &err),
			TM_ERR_NUMERIC);
	CU_ASSERT_STRING_EQUAL(err.msg, "bias[0] = -2 does not fit int32 "
				       "at scale 9.9999999999999998e-13 "
				       "(saturated to -2147483648; 1 value "
				       "affected)");
	CU_ASSERT_EQUAL(q[0], INT32_MIN);
}

static void
test_bias_bad_scale(void)
{
	tm_error err;
	int32_t q[1] = { 42 };

	tm_error_clear(&err);
	CU_ASSERT_EQUAL(tm_quant_bias(fc2_b, 1, 0.0, 1.0, q, &err),
			TM_ERR_INVALID);
	CU_ASSERT_STRING_EQUAL(err.msg, "bias scale 0 * 1 = 0 is not a "
				       "positive finite number");
	CU_ASSERT_EQUAL(q[0], 42);
	tm_error_clear(&err);
	CU_ASSERT_EQUAL(tm_quant_bias(fc2_b, 1, NAN, 1.0, q, &err),
			TM_ERR_INVALID);
	CU_ASSERT_EQUAL(q[0], 42);
}

/* The whole XOR chain as the quantizer would run it: every scale comes
 * from the functions above, in double, and feeds the next step. */
static void
test_xor_chain(void)
{
	double s_in, s_pre, s_hid, s_out, s_w1, s_w2;
	int32_t zp_in, zp_pre, zp_hid, zp_out, b1[4], b2[1], q, shift;
	tm_error err;

	tm_error_clear(&err);
	CU_ASSERT_EQUAL(tm_quant_affine(0, 1, &s_in, &zp_in, &err), TM_OK);
	CU_ASSERT_EQUAL(tm_quant_affine(-1, 2, &s_pre, &zp_pre, &err), TM_OK);
	CU_ASSERT_EQUAL(tm_quant_affine(0, 2, &s_hid, &zp_hid, &err), TM_OK);
	CU_ASSERT_EQUAL(tm_quant_affine(-2, 2, &s_out, &zp_out, &err), TM_OK);
	CU_ASSERT_EQUAL(zp_in, -128);
	CU_ASSERT_EQUAL(zp_pre, -43);
	CU_ASSERT_EQUAL(zp_hid, -128);
	CU_ASSERT_EQUAL(zp_out, -1);
	CU_ASSERT(s_pre == 3.0 / 255);
	s_w1 = tm_quant_weight_scale(fc1_w, LEN(fc1_w));
	s_w2 = tm_quant_weight_scale(fc2_w, LEN(fc2_w));

	CU_ASSERT_EQUAL(tm_quant_bias(fc1_b, 4, s_in, s_w1, b1, &err), TM_OK);
	CU_ASSERT_EQUAL(tm_quant_bias(fc2_b, 1, s_hid, s_w2, b2, &err), TM_OK);
	CU_ASSERT_EQUAL(b1[1], -32385);
	CU_ASSERT_EQUAL(b1[3], -32385);
	CU_ASSERT_EQUAL(b2[0], -8096);

	/* fc1 requantizes into the hidden (post-ReLU) tensor. */
	CU_ASSERT_EQUAL(tm_quantize_multiplier(s_in * s_w1 / s_hid, &q, &shift,
					       &err), TM_OK);
	CU_ASSERT_EQUAL(q, 1082196484);
	CU_ASSERT_EQUAL(shift, 7);
	CU_ASSERT_EQUAL(tm_quantize_multiplier(s_hid * s_w2 / s_out, &q,
					       &shift, &err), TM_OK);
	CU_ASSERT_EQUAL(q, 1082196484);
	CU_ASSERT_EQUAL(shift, 5);
	CU_ASSERT_EQUAL(err.code, TM_OK);
}

static const tm_test_case cases[] = {
	{ "multiplier known values", test_multiplier_known },
	{ "multiplier rounding to 2^31", test_multiplier_rounds_up_to_pow2 },
	{ "multiplier flush to zero", test_multiplier_flush },
	{ "multiplier errors", test_multiplier_errors },
	{ "affine XOR ranges", test_affine_xor },
	{ "affine all-zero range", test_affine_zero_range },
	{ "affine range widened to 0", test_affine_widened },
	{ "affine symmetric range zp -1", test_affine_symmetric },
	{ "affine zero point rounding", test_affine_rounding },
	{ "affine rejects NaN/Inf/lo>hi", test_affine_rejects },
	{ "affine NULL err", test_affine_null_err },
	{ "weight scale", test_weight_scale },
	{ "weights XOR", test_weights_xor },
	{ "weights ties and clamp", test_weights_ties_and_clamp },
	{ "bias XOR", test_bias_xor },
	{ "bias ties", test_bias_ties },
	{ "bias saturation", test_bias_saturation },
	{ "bias bad scale", test_bias_bad_scale },
	{ "XOR chain", test_xor_chain },
	{ NULL, NULL }
};

int
main(void)
{
	if (tm_test_add_suite("quant", cases))
		return 99;
	return tm_test_run();
}
