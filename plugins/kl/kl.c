/* kl — entropy calibration (TensorRT, "8-bit Inference with TensorRT",
 * GTC 2017): the clipping threshold whose quantized distribution loses
 * the least information, measured as KL(P || Q).
 *
 * Passes over the calibration data:
 *  1. the range: min and max of the values;
 *  2. a histogram of v = |x| (mode symmetric) or v = x (nonnegative) in
 *     `bins` equal bins over [0, edge], edge = max |x| (or max x): bin i
 *     holds the v with floor(v * (bins / edge)) = i, in double, the last
 *     bin also v = edge.
 * An all-zero tensor needs only pass 1: its range is [0, 0].
 *
 * The sweep, for every T from `levels` to `bins` (the bins kept):
 *  - P = hist[0:T], the outliers hist[T:] added to P[T-1];
 *  - Q = the unclipped hist[0:T] merged into `levels` groups: group g
 *    covers bins [g*m, (g+1)*m) with m = T / levels (integer division),
 *    the last group also the remainder, up to T (MXNet's split of the
 *    TensorRT algorithm). Each group's mass is spread evenly over the
 *    group's bins where P is nonzero, 0 elsewhere;
 *  - P and Q are normalized; P stays as is (a bin with p = 0 adds
 *    nothing), and Q is smoothed by mixing in eps = 1e-4 of the uniform
 *    distribution over P's support: q' = (1 - eps) q + eps / |supp P| on
 *    supp P. So a bin with p > 0 and q = 0 (outliers folded into a
 *    group with no mass of its own) costs p log(p |supp P| / eps): it is
 *    penalised, not skipped;
 *  - KL(P || Q) = sum over supp P of p log(p / q'). A T whose first T
 *    bins are all empty has Q = 0 and is never chosen.
 * The chosen T has the smallest KL; values within 1e-12 (nats) of the
 * smallest are ties, broken towards the smallest T (the tighter range),
 * so rounding cannot make two implementations disagree. The threshold
 * is (T + 0.5) * edge / bins, computed in double and rounded to float;
 * the range is (-threshold, threshold), quantized symmetrically (zero
 * point 0), or [0, threshold] in mode nonnegative.
 *
 * Q built from the unclipped histogram is what makes the small T costly:
 * the outliers folded into P[T-1] have no counterpart in Q. (Building Q
 * from the folded P, as TinyMind's importer did, makes KL 0 at T =
 * levels, so it always clipped at edge / 16.)
 *
 * Speed: with prefix sums over the histogram (counts, h log h, nonzero
 * bins), the support of P in a group and its masses are O(1), and with
 * this smoothing q' is one constant per group on P's support, so
 * KL = sum p log p - sum_g P_g log q'_g costs O(levels) per T and the
 * sweep O(bins * levels), one log per nonempty group.
 *
 * Modes: symmetric (the default, TensorRT's), nonnegative (for tensors
 * that are never negative, such as ReLU outputs: the histogram is of x
 * over [0, max] and the range [0, threshold], using all 256 levels; a
 * negative value is an error naming the smallest value seen), auto
 * (nonnegative when pass 1 saw no negative value, else symmetric), and
 * asymmetric: the threshold as in symmetric (the histogram of |x|), the
 * range (-threshold, threshold) clipped to the values seen,
 * [max(-threshold, min), min(threshold, max)], quantized with a zero
 * point. That is ONNX Runtime's entropy calibrator for asymmetric
 * activations (calibrate.py, HistogramCollector.compute_entropy clips
 * its symmetric threshold to the tensor's min and max): a tensor that
 * reaches -1.4 but only +0.7 gets its 256 levels over [-1.4, 0.7]
 * rather than over (-1.4, 1.4), half of whose positive levels would
 * never be used. On a tensor without negative values it is nonnegative
 * (same histogram, same T), the range capped at max.
 *
 * Memory: bins 8-byte counts in pass 2 (16 KiB by default), allocated
 * when first used; finish uses bins-sized scratch it frees. Merge: min
 * and max in pass 1, counts added in pass 2 (exact).
 *
 * Built only against the public observer API, like any third-party
 * observer. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <tmpipe/tmpipe.h>

#define KL_EPS 1e-4
#define KL_TIE 1e-12

enum { MODE_SYMMETRIC, MODE_NONNEGATIVE, MODE_AUTO, MODE_ASYMMETRIC };

static const char *const kl_modes[] = { "symmetric", "nonnegative", "auto",
					"asymmetric", NULL };

typedef struct kl {
	/* Parameters. */
	int mode;
	size_t bins, levels;

	int pass;		/* 1 or 2 */
	uint64_t n;		/* values seen in pass 1 */
	float min, max;		/* pass 1 */
	int nonneg;		/* histogram of x, not |x| (after pass 1) */
	double edge;		/* the histogram's upper edge */
	double scale;		/* bins / edge */
	uint64_t seen;		/* values seen in pass 2 */
	uint64_t *hist;		/* pass 2: bins counts, NULL until used */
	size_t touch_lo, touch_hi; /* counts outside [lo, hi) are 0 */
} kl;

static void
kl_destroy(void *state)
{
	kl *s = state;

	if (s)
		free(s->hist);
	free(s);
}

static void *
kl_create(const tm_params *params, tm_error *err)
{
	int64_t bins = tm_params_get_int(params, "bins");
	int64_t levels = tm_params_get_int(params, "levels");
	const char *mode = tm_params_get_string(params, "mode");
	kl *s;

	if (levels > bins) {
		tm_params_error(params,
				tm_params_is_set(params, "levels") ? "levels"
								   : "bins",
				err, TM_ERR_INVALID,
				"levels (%lld) must not exceed bins (%lld)",
				(long long)levels, (long long)bins);
		return NULL;
	}
	s = calloc(1, sizeof *s);
	if (!s) {
		tm_error_set(err, TM_ERR_NOMEM, "out of memory");
		return NULL;
	}
	s->bins = (size_t)bins;
	s->levels = (size_t)levels;
	s->mode = MODE_SYMMETRIC;
	for (int i = 0; mode && kl_modes[i]; i++)
		if (strcmp(mode, kl_modes[i]) == 0)
			s->mode = i;
	s->nonneg = s->mode == MODE_NONNEGATIVE;
	s->pass = 1;
	return s;
}

static void *
kl_clone(const void *state, tm_error *err)
{
	const kl *src = state;
	kl *s = malloc(sizeof *s);

	if (!s)
		goto nomem;
	*s = *src;
	s->hist = NULL;
	if (src->hist) {
		s->hist = malloc(src->bins * sizeof *s->hist);
		if (!s->hist)
			goto nomem;
		memcpy(s->hist, src->hist, src->bins * sizeof *s->hist);
	}
	return s;
nomem:
	free(s);
	tm_error_set(err, TM_ERR_NOMEM, "out of memory");
	return NULL;
}

static tm_status
need_hist(kl *s, tm_error *err)
{
	if (s->hist)
		return TM_OK;
	s->hist = calloc(s->bins, sizeof *s->hist);
	if (!s->hist)
		return tm_error_set(err, TM_ERR_NOMEM,
				    "out of memory for a histogram of %zu "
				    "bins", s->bins);
	s->touch_lo = s->bins;
	s->touch_hi = 0;
	return TM_OK;
}

static tm_status
negative(const kl *s, tm_error *err)
{
	return tm_error_set(err, TM_ERR_INVALID,
			    "mode nonnegative, but the tensor holds negative "
			    "values (the smallest seen: %.9g); use mode "
			    "symmetric or auto",
			    (double)s->min);
}

static tm_status
kl_observe(void *state, const float *x, size_t n, tm_error *err)
{
	kl *s = state;
	size_t lo, hi;
	double last;
	tm_status st;

	if (n == 0)
		return TM_OK;
	if (s->pass == 1) {
		float mn = s->n ? s->min : x[0];
		float mx = s->n ? s->max : x[0];

		for (size_t i = 0; i < n; i++) {
			mn = x[i] < mn ? x[i] : mn;
			mx = x[i] > mx ? x[i] : mx;
		}
		s->min = mn;
		s->max = mx;
		s->n += n;
		if (s->mode == MODE_NONNEGATIVE && mn < 0.0f)
			return negative(s, err);
		return TM_OK;
	}
	st = need_hist(s, err);
	if (st)
		return st;
	lo = s->touch_lo;
	hi = s->touch_hi;
	last = (double)(s->bins - 1);
	for (size_t i = 0; i < n; i++) {
		double t = (s->nonneg ? (double)x[i] : fabs((double)x[i])) *
			   s->scale;
		/* t >= 0 here (|x|, or x of a tensor pass 1 saw nonnegative),
		 * so a clamp from above is enough, and it compiles without a
		 * branch: the tests mispredicted on tensors full of zeros. */
		double tc = t < last ? t : last;
		size_t b = (size_t)tc;

		s->hist[b]++;
		lo = b < lo ? b : lo;
		hi = b + 1 > hi ? b + 1 : hi;
	}
	s->touch_lo = lo;
	s->touch_hi = hi;
	s->seen += n;
	return TM_OK;
}

static tm_status
kl_merge(void *dst, const void *src, tm_error *err)
{
	kl *d = dst;
	const kl *s = src;
	tm_status st;

	if (d->pass == 1) {
		if (!s->n)
			return TM_OK;
		if (!d->n) {
			d->min = s->min;
			d->max = s->max;
		} else {
			d->min = s->min < d->min ? s->min : d->min;
			d->max = s->max > d->max ? s->max : d->max;
		}
		d->n += s->n;
		return TM_OK;
	}
	if (!s->hist)
		return TM_OK;
	st = need_hist(d, err);
	if (st)
		return st;
	for (size_t i = s->touch_lo; i < s->touch_hi; i++)
		d->hist[i] += s->hist[i];
	if (s->touch_lo < s->touch_hi) {
		d->touch_lo = s->touch_lo < d->touch_lo ? s->touch_lo
							: d->touch_lo;
		d->touch_hi = s->touch_hi > d->touch_hi ? s->touch_hi
							: d->touch_hi;
	}
	d->seen += s->seen;
	return TM_OK;
}

static int
kl_next_pass(void *state)
{
	kl *s = state;

	if (s->pass != 1 || !s->n)
		return 0;
	if (s->mode == MODE_NONNEGATIVE && s->min < 0.0f)
		return 0;	/* finish reports it */
	if (s->mode == MODE_AUTO)
		s->nonneg = s->min >= 0.0f;
	s->edge = s->nonneg ? (double)s->max
			    : fmax(fabs((double)s->min), fabs((double)s->max));
	if (!(s->edge > 0.0))
		return 0;
	s->scale = (double)s->bins / s->edge;
	s->pass = 2;
	return 1;
}

static double
xlogx(double x)
{
	return x > 0.0 ? x * log(x) : 0.0;
}

/* The T of the smallest KL(P || Q) (see the top of the file); -1 when
 * out of memory. */
static long
sweep(const kl *s)
{
	size_t B = s->bins, L = s->levels;
	double *S = malloc((B + 1) * sizeof *S);	/* sum h[0:i] */
	double *HL = malloc((B + 1) * sizeof *HL);	/* sum h log h */
	size_t *NZ = malloc((B + 1) * sizeof *NZ);	/* h > 0 in [0:i] */
	double *kld = malloc((B + 1) * sizeof *kld);
	double N, logN, best = INFINITY;
	long T_best = -1;

	if (!S || !HL || !NZ || !kld)
		goto out;
	S[0] = HL[0] = 0.0;
	NZ[0] = 0;
	for (size_t i = 0; i < B; i++) {
		double h = (double)s->hist[i];

		S[i + 1] = S[i] + h;
		HL[i + 1] = HL[i] + xlogx(h);
		NZ[i + 1] = NZ[i] + (s->hist[i] > 0);
	}
	N = S[B];
	logN = log(N);
	for (size_t T = L; T <= B; T++) {
		size_t m = T / L, a;
		double ST = S[T], out = N - ST, last = N - S[T - 1];
		double Z, c1, c2, sum_pq, H, M;
		size_t n;

		kld[T] = INFINITY;
		if (ST == 0.0)
			continue;
		/* P's support: the nonzero bins below T - 1, and P[T-1]
		 * = h[T-1] + the outliers. */
		Z = (double)(NZ[T - 1] + (last > 0.0));
		c1 = (1.0 - KL_EPS) / ST;
		c2 = KL_EPS / Z;
		sum_pq = 0.0;
		for (size_t g = 0; g + 1 < L; g++) {
			a = g * m;
			H = S[a + m] - S[a];
			if (H == 0.0)
				continue;
			n = NZ[a + m] - NZ[a];
			sum_pq += H * log(c1 * H / (double)n + c2);
		}
		a = (L - 1) * m;
		H = S[T] - S[a];
		M = H + out;
		n = NZ[T - 1] - NZ[a] + (last > 0.0);
		if (M > 0.0)
			sum_pq += M * log(c1 * H / (double)n + c2);
		/* sum p log p - sum p log q', p = P / N. */
		kld[T] = (HL[T - 1] + xlogx(last)) / N - logN - sum_pq / N;
		if (kld[T] < best)
			best = kld[T];
	}
	for (size_t T = L; T <= B; T++)
		if (kld[T] <= best + KL_TIE) {
			T_best = (long)T;
			break;
		}
out:
	free(S);
	free(HL);
	free(NZ);
	free(kld);
	return T_best;
}

static tm_status
kl_finish(void *state, float *lo, float *hi, tm_error *err)
{
	kl *s = state;
	double thr;
	long T;

	if (!s->n)
		return tm_error_set(err, TM_ERR_INVALID, "saw no values");
	if (s->mode == MODE_NONNEGATIVE && s->min < 0.0f)
		return negative(s, err);
	if (s->pass == 1) {
		if (s->edge > 0.0 || s->min != 0.0f || s->max != 0.0f)
			return tm_error_set(err, TM_ERR_INTERNAL,
					    "finish before the histogram "
					    "pass");
		*lo = *hi = 0.0f;
		return TM_OK;
	}
	if (s->seen != s->n)
		return tm_error_set(err, TM_ERR_INTERNAL,
				    "the data changed between passes (%llu "
				    "values in pass 1, %llu in pass 2)",
				    (unsigned long long)s->n,
				    (unsigned long long)s->seen);
	T = sweep(s);
	if (T < 0)
		return tm_error_set(err, TM_ERR_NOMEM, "out of memory");
	thr = ((double)T + 0.5) * s->edge / (double)s->bins;
	*hi = (float)thr;
	*lo = s->nonneg ? 0.0f : -*hi;
	if (s->mode == MODE_ASYMMETRIC) {
		*lo = *lo > s->min ? *lo : s->min;
		*hi = *hi < s->max ? *hi : s->max;
	}
	return TM_OK;
}

static size_t
kl_state_size(const void *state)
{
	const kl *s = state;

	return sizeof *s + (s->hist ? s->bins * sizeof *s->hist : 0);
}

static int
kl_symmetric(const void *state)
{
	const kl *s = state;

	return !s->nonneg && s->mode != MODE_ASYMMETRIC;
}

static const tm_param_spec kl_params[] = {
	{ .name = "bins", .type = TM_PARAM_INT, .def = "2048",
	  .flags = TM_PARAM_HAS_MIN | TM_PARAM_HAS_MAX, .min = 2,
	  .max = 65536,
	  .help = "histogram bins over [0, max |x|]" },
	{ .name = "levels", .type = TM_PARAM_INT, .def = "128",
	  .flags = TM_PARAM_HAS_MIN | TM_PARAM_HAS_MAX, .min = 2,
	  .max = 65536,
	  .help = "quantized levels of Q (128: int8's half range)" },
	{ .name = "mode", .type = TM_PARAM_STRING, .def = "symmetric",
	  .choices = kl_modes,
	  .help = "symmetric (-t, t); nonnegative [0, t]; auto: nonnegative "
		  "when no value is negative; asymmetric: (-t, t) clipped to "
		  "[min, max], with a zero point" },
	TM_PARAM_END
};

static const tm_observer_ops kl_ops = {
	.create = kl_create,
	.destroy = kl_destroy,
	.observe = kl_observe,
	.next_pass = kl_next_pass,
	.merge = kl_merge,
	.finish = kl_finish,
	.state_size = kl_state_size,
	.clone = kl_clone,
	.symmetric = kl_symmetric,
};

TM_PLUGIN_DEFINE(TM_PLUGIN_OBSERVER, "kl", "1.0",
		 "entropy calibration (TensorRT): the threshold of least "
		 "KL divergence, 2 passes",
		 kl_params, &kl_ops)
