/* tmpipe — quantization arithmetic: activation and weight parameters,
 * bias quantization and requantization multipliers.
 *
 * Formulas from the TFLite int8 quantization spec and gemmlowp (see
 * QUANT.md). Everything is computed in double; rounding is lround's,
 * ties away from zero, everywhere.
 */
#include "config.h"

#include <float.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include <tmpipe/quant.h>

/* Sign of c1 * x1 - c2 * x2, exactly. Each product is split into its
 * rounded value and the exact rounding error (fma); rounding is
 * monotonic, so comparing the rounded values first and the errors on a
 * tie orders the exact products. */
static int
cmp_products(double c1, double x1, double c2, double x2)
{
	double p1 = c1 * x1, p2 = c2 * x2, e1, e2;

	if (p1 != p2)
		return p1 < p2 ? -1 : 1;
	e1 = fma(c1, x1, -p1);
	e2 = fma(c2, x2, -p2);
	return (e1 > e2) - (e1 < e2);
}

/* x = 255 a / (a + hi) rounded to nearest, for a = -lo >= 0, hi >= 0,
 * a + hi > 0, with a tie broken the way lround breaks it for -128 + x
 * (away from zero). A double estimate picks the candidate tie m + 0.5
 * and the exact test
 *	x > m + 0.5  <=>  (509 - 2m) a > (2m + 1) hi
 * decides; it multiplies only the inputs, so even the rounding of
 * hi - lo is out of the picture. */
static int32_t
round_x(double a, double hi)
{
	double f = a * 255.0 / (a + hi);
	int32_t m;
	int c;

	m = f < 0.0 ? 0 : f >= 254.0 ? 254 : (int32_t)f;
	c = cmp_products(509.0 - 2.0 * m, a, 2.0 * m + 1.0, hi);
	if (c < 0)
		return m;
	if (c > 0)
		return m + 1;
	/* -128 + m + 0.5 is negative up to m = 127: away is down. */
	return m <= 127 ? m : m + 1;
}

static tm_status
check_range(double lo, double hi, tm_error *err)
{
	if (!isfinite(lo) || !isfinite(hi))
		return tm_error_set(err, TM_ERR_NUMERIC,
				    "activation range [%.17g, %.17g] is not "
				    "finite", lo, hi);
	if (lo > hi)
		return tm_error_set(err, TM_ERR_INVALID,
				    "activation range [%.17g, %.17g] has "
				    "min > max", lo, hi);
	return TM_OK;
}

tm_status
tm_quant_affine(double lo, double hi, double *scale, int32_t *zero_point,
		tm_error *err)
{
	double width, s;
	tm_status st;

	st = check_range(lo, hi, err);
	if (st)
		return st;

	/* TFLite int8 spec: real 0 must be exactly representable (zero
	 * padding, ReLU), so the range always contains it. */
	if (lo > 0.0)
		lo = 0.0;
	if (hi < 0.0)
		hi = 0.0;

	/* An all-zero tensor: any scale represents it; 1 keeps later
	 * divisions finite (never scale 0, never NaN). */
	if (hi == lo) {
		*scale = 1.0;
		*zero_point = TM_QMIN;
		return TM_OK;
	}

	width = hi - lo;
	s = width / 255.0;
	/* The scale is emitted as float32; one that overflows or falls
	 * below the smallest normal float would be written as Inf, 0 or
	 * a denormal, and width == Inf would poison the zero point. */
	if (!isfinite(width) || s > (double)FLT_MAX ||
	    s < (double)FLT_MIN)
		return tm_error_set(err, TM_ERR_NUMERIC,
				    "activation range [%.17g, %.17g] gives "
				    "scale %.17g, outside float32's normal "
				    "range", lo, hi, s);

	/* From the range, not from the rounded scale, and exactly: the
	 * zero point is the real -128 - lo * 255 / (hi - lo) rounded once.
	 * Evaluating that expression in double is not enough: for about a
	 * third of symmetric double ranges (-t, t), lo * 255 / (hi - lo)
	 * is off -127.5 by an ulp and lround gives 0 instead of -1. */
	*scale = s;
	*zero_point = TM_QMIN + round_x(-lo, hi);
	return TM_OK;
}

tm_status
tm_quant_affine_symmetric(double lo, double hi, double *scale,
			  int32_t *zero_point, tm_error *err)
{
	double t, s;
	tm_status st;

	st = check_range(lo, hi, err);
	if (st)
		return st;
	t = fabs(lo) > fabs(hi) ? fabs(lo) : fabs(hi);
	*zero_point = 0;
	if (t == 0.0) {
		*scale = 1.0;
		return TM_OK;
	}
	/* Like the weights: -t..t onto -127..127, zero point 0. */
	s = t / 127.0;
	if (s > (double)FLT_MAX || s < (double)FLT_MIN)
		return tm_error_set(err, TM_ERR_NUMERIC,
				    "activation range [%.17g, %.17g] gives "
				    "scale %.17g, outside float32's normal "
				    "range", lo, hi, s);
	*scale = s;
	return TM_OK;
}

double
tm_quant_weight_scale(const float *w, size_t n)
{
	double absmax = 0.0;
	size_t i;

	/* NaN compares false and is skipped here; the caller checks the
	 * weights for finiteness (this function has no error path). */
	for (i = 0; i < n; i++) {
		double a = fabs((double)w[i]);

		if (a > absmax)
			absmax = a;
	}
	if (absmax == 0.0)
		return 1.0;
	return absmax / 127.0;
}

void
tm_quant_weights(const float *w, size_t n, double scale, int8_t *q)
{
	size_t i;

	/* TFLite int8 spec: weights are symmetric on [-127, 127] (zp 0),
	 * so -128 is never produced.
	 *
	 * w / scale, as the header documents: the XOR net's 2 / (4 / 127)
	 * is exactly 63.5 in double and rounds away to 64. Not every tie
	 * survives the rounding of scale = absmax / 127, though (w * 127 /
	 * absmax would be exact for float w); only exact ties can come out
	 * differently, by one step. Clamping before lround keeps it in
	 * range for any scale the caller passes; NaN becomes 0 rather
	 * than lround's unspecified value. */
	for (i = 0; i < n; i++) {
		double v = (double)w[i] / scale;

		if (isnan(v))
			q[i] = 0;
		else if (v >= TM_QMAX)
			q[i] = TM_QMAX;
		else if (v <= -TM_QMAX)
			q[i] = -TM_QMAX;
		else
			q[i] = (int8_t)lround(v);
	}
}

tm_status
tm_quant_bias(const float *b, size_t n, double s_in, double s_w, int32_t *q,
	      tm_error *err)
{
	double s_b = s_in * s_w;
	size_t i, first = 0, nsat = 0;
	double first_val = 0.0;

	/* TFLite int8 spec: s_b = s_in * s_w with zp 0, so the int32
	 * accumulator and the bias share one scale. */
	if (!isfinite(s_b) || s_b <= 0.0)
		return tm_error_set(err, TM_ERR_INVALID,
				    "bias scale %.17g * %.17g = %.17g is not a "
				    "positive finite number", s_in, s_w, s_b);

	for (i = 0; i < n; i++) {
		double v = (double)b[i] / s_b;

		/* lround would round these past the int32 range:
		 * 2147483647.5 and -2147483648.5 are exact in double. */
		if (v >= 2147483647.5)
			q[i] = INT32_MAX;
		else if (v <= -2147483648.5)
			q[i] = INT32_MIN;
		else if (isnan(v))
			q[i] = 0;
		else {
			q[i] = (int32_t)lround(v);
			continue;
		}
		if (nsat++ == 0) {
			first = i;
			first_val = (double)b[i];
		}
	}
	if (nsat == 0)
		return TM_OK;
	return tm_error_set(err, TM_ERR_NUMERIC,
			    "bias[%zu] = %.9g does not fit int32 at scale "
			    "%.17g (saturated to %ld; %zu value%s affected)",
			    first, first_val, s_b, (long)q[first], nsat,
			    nsat == 1 ? "" : "s");
}

tm_status
tm_quantize_multiplier(double m, int32_t *multiplier, int32_t *shift,
		       tm_error *err)
{
	double frac;
	long long q;
	int e;

	if (isnan(m))
		return tm_error_set(err, TM_ERR_NUMERIC,
				    "requantization multiplier is NaN");
	if (m < 0.0)
		return tm_error_set(err, TM_ERR_INVALID,
				    "requantization multiplier %.17g is "
				    "negative", m);
	if (m >= 2147483648.0)
		return tm_error_set(err, TM_ERR_NUMERIC,
				    "requantization multiplier %.17g is too "
				    "large (must be < 2^31)", m);

	/* Flushed to zero as TFLite does: such a multiplier moves any
	 * int32 accumulator by less than one step, and the bound keeps
	 * the right shift at most 30. */
	if (m < 0x1p-31) {
		*multiplier = 0;
		*shift = 0;
		return TM_OK;
	}

	/* gemmlowp / TFLite QuantizeMultiplier: m = frac * 2^e with frac
	 * in [0.5, 1), frac as Q31. llround: same ties as lround, and the
	 * result 2^31 fits where long is 32 bits. */
	frac = frexp(m, &e);
	q = llround(frac * 2147483648.0);
	if (q == 2147483648LL) {
		q = 1073741824LL;
		e++;
	}
	/* Only reachable when m rounds up to 2^31. */
	if (e > 31)
		return tm_error_set(err, TM_ERR_NUMERIC,
				    "requantization multiplier %.17g is too "
				    "large (must be < 2^31)", m);
	*multiplier = (int32_t)q;
	*shift = -e;
	return TM_OK;
}
