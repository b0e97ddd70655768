/* percentile — the range [P_lo, P_hi] between two percentiles of a
 * tensor's values, clipping the outliers on both sides. Bounded memory:
 * no value is stored, only histograms.
 *
 * Definition. numpy.percentile's default ('linear'): of the N values
 * sorted, x_(0) <= ... <= x_(N-1), the p-th percentile is at rank
 * r = p / 100 * (N - 1); with k = floor(r), it is
 * x_(k) + (r - k) * (x_(k+1) - x_(k)) (x_(k) alone when r is whole).
 * lo = 0 gives the minimum, hi = 100 the maximum, exactly.
 *
 * Passes over the calibration data (each one a full run of the network):
 *  1. the exact minimum and maximum;
 *  2. a histogram of `bins` equal bins over [min, max];
 *  3. (refine: true, the default) for each percentile, a histogram of
 *     `bins` equal sub-bins over the bin that holds x_(k), and the exact
 *     smallest and largest value of the bins holding x_(k) and x_(k+1).
 * A tensor whose values are all equal needs only pass 1 (the answer is
 * that value), and so does one that saw no value (finish fails).
 *
 * Estimates. The order statistic x_(k) is the j-th (0-based) of the c
 * values of its bin. x_(0) and x_(N-1) are the exact minimum and
 * maximum. After pass 3, the first (j = 0) and the last (j = c - 1) of a
 * bin are exact too, its smallest and largest value (so is x_(k+1)
 * whenever it is not in the bin of x_(k)); any other is found in its
 * sub-bin. Inside the finest bin [a, a + w) that holds it, the c values
 * are taken as spread evenly: the j-th at a + (j + 0.5) / c * w.
 *
 * Error bound, for both ends: |answer - numpy.percentile| <= R / bins^2
 * with refine (the default; R = max - min; with the default 16384 bins,
 * 3.7e-9 * R), R / bins without (6.1e-5 * R), plus the rounding of the
 * answer to float. Each order statistic is estimated within the width of
 * the finest bin that holds it, and the answer is a convex combination
 * of two of them. Refining matters on heavy tails: there R is many times
 * the percentile itself.
 *
 * Binning, in double: t = (x - min) * (bins / (max - min)); a value's
 * bin is floor(t) (bins - 1 for x = max), its sub-bin
 * floor((t - bin) * bins) (the same clamp).
 *
 * Memory, whatever the data: a state of pass 2 holds bins 8-byte counts
 * (128 KiB by default), of pass 3 2 * bins, from its first observe on;
 * finish allocates nothing. Merge: min and max in pass 1, counts added
 * (and bin extremes combined) in later passes, all exact, so any split
 * of the data gives the same bits.
 *
 * Built only against the public observer API, like any third-party
 * observer. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <tmpipe/tmpipe.h>

/* The order statistics wanted: for percentile i (0: lo, 1: hi), the
 * floor (2i) and the ceiling (2i + 1) of its rank. */
#define NSTAT 4

typedef struct pct {
	/* Parameters. */
	double pc[2];		/* lo and hi, in percent */
	size_t bins;
	int refine;

	int pass;		/* 1, 2 or 3 */
	uint64_t n;		/* values seen in pass 1 */
	float min, max;		/* pass 1 */
	double scale;		/* bins / (max - min) */
	uint64_t seen;		/* values seen in this pass (2 or 3) */

	/* Pass 2: bins counts. Pass 3: 2 * bins, the sub-bins of
	 * stat_bin[2i] at [i * bins, (i + 1) * bins). NULL until used. */
	uint64_t *hist;
	size_t hist_len;
	size_t touch_lo, touch_hi; /* counts outside [lo, hi) are 0 */

	/* Set when pass 2 ends. */
	uint64_t rank[NSTAT];
	size_t stat_bin[NSTAT];	/* the bin holding each */
	uint64_t stat_below[NSTAT]; /* values in the bins below it */
	uint64_t stat_count[NSTAT]; /* values in its bin */

	/* Pass 3: the extremes of each stat_bin (+-inf when none). */
	float bin_min[NSTAT], bin_max[NSTAT];
} pct;

static void
pct_destroy(void *state)
{
	pct *s = state;

	if (s)
		free(s->hist);
	free(s);
}

static void *
pct_create(const tm_params *params, tm_error *err)
{
	pct *s;
	double lo = tm_params_get_float(params, "lo");
	double hi = tm_params_get_float(params, "hi");

	if (!(lo < hi)) {
		tm_params_error(params, tm_params_is_set(params, "hi") ? "hi"
									: "lo",
				err, TM_ERR_INVALID,
				"lo (%g) must be below hi (%g)", lo, hi);
		return NULL;
	}
	s = calloc(1, sizeof *s);
	if (!s) {
		tm_error_set(err, TM_ERR_NOMEM, "out of memory");
		return NULL;
	}
	s->pc[0] = lo;
	s->pc[1] = hi;
	s->bins = (size_t)tm_params_get_int(params, "bins");
	s->refine = tm_params_get_bool(params, "refine");
	s->pass = 1;
	return s;
}

static void *
pct_clone(const void *state, tm_error *err)
{
	const pct *src = state;
	pct *s = malloc(sizeof *s);

	if (!s)
		goto nomem;
	*s = *src;
	s->hist = NULL;
	if (src->hist) {
		s->hist = malloc(src->hist_len * sizeof *s->hist);
		if (!s->hist)
			goto nomem;
		memcpy(s->hist, src->hist, src->hist_len * sizeof *s->hist);
	}
	return s;
nomem:
	free(s);
	tm_error_set(err, TM_ERR_NOMEM, "out of memory");
	return NULL;
}

/* The histogram of the current pass, allocated on first use. */
static tm_status
need_hist(pct *s, tm_error *err)
{
	size_t len = s->pass == 2 ? s->bins : 2 * s->bins;

	if (s->hist)
		return TM_OK;
	s->hist = calloc(len, sizeof *s->hist);
	if (!s->hist)
		return tm_error_set(err, TM_ERR_NOMEM,
				    "out of memory for a histogram of %zu "
				    "bins", len);
	s->hist_len = len;
	s->touch_lo = len;
	s->touch_hi = 0;
	return TM_OK;
}

static size_t
bin_of(double t, size_t bins)
{
	if (!(t > 0.0))
		return 0;
	if (t >= (double)bins)
		return bins - 1;
	return (size_t)t;
}

static void
touch(pct *s, size_t i)
{
	if (i < s->touch_lo)
		s->touch_lo = i;
	if (i + 1 > s->touch_hi)
		s->touch_hi = i + 1;
}

/* Pass 3: value x at t = (x - min) * scale, in bin b. */
static void
refine_one(pct *s, float x, double t, size_t b)
{
	for (int i = 0; i < NSTAT; i++) {
		if (s->stat_bin[i] != b)
			continue;
		s->bin_min[i] = x < s->bin_min[i] ? x : s->bin_min[i];
		s->bin_max[i] = x > s->bin_max[i] ? x : s->bin_max[i];
		if (i % 2 == 0) {
			size_t j = (size_t)i / 2 * s->bins +
				   bin_of((t - (double)b) * (double)s->bins,
					  s->bins);

			s->hist[j]++;
			touch(s, j);
		}
	}
}

static tm_status
pct_observe(void *state, const float *x, size_t n, tm_error *err)
{
	pct *s = state;
	tm_status st;

	if (n == 0)
		return TM_OK;
	if (s->pass == 1) {
		float lo = s->n ? s->min : x[0];
		float hi = s->n ? s->max : x[0];

		for (size_t i = 0; i < n; i++) {
			lo = x[i] < lo ? x[i] : lo;
			hi = x[i] > hi ? x[i] : hi;
		}
		s->min = lo;
		s->max = hi;
		s->n += n;
		return TM_OK;
	}
	st = need_hist(s, err);
	if (st)
		return st;
	if (s->pass == 2) {
		size_t lo = s->touch_lo, hi = s->touch_hi;

		for (size_t i = 0; i < n; i++) {
			size_t b = bin_of(((double)x[i] - s->min) * s->scale,
					  s->bins);

			s->hist[b]++;
			lo = b < lo ? b : lo;
			hi = b + 1 > hi ? b + 1 : hi;
		}
		s->touch_lo = lo;
		s->touch_hi = hi;
	} else {
		for (size_t i = 0; i < n; i++) {
			double t = ((double)x[i] - s->min) * s->scale;
			size_t b = bin_of(t, s->bins);

			if (b == s->stat_bin[0] || b == s->stat_bin[1] ||
			    b == s->stat_bin[2] || b == s->stat_bin[3])
				refine_one(s, x[i], t, b);
		}
	}
	s->seen += n;
	return TM_OK;
}

static tm_status
pct_merge(void *dst, const void *src, tm_error *err)
{
	pct *d = dst;
	const pct *s = src;
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
		touch(d, s->touch_lo);
		touch(d, s->touch_hi - 1);
	}
	for (int i = 0; d->pass == 3 && i < NSTAT; i++) {
		if (s->bin_min[i] < d->bin_min[i])
			d->bin_min[i] = s->bin_min[i];
		if (s->bin_max[i] > d->bin_max[i])
			d->bin_max[i] = s->bin_max[i];
	}
	d->seen += s->seen;
	return TM_OK;
}

/* After pass 2: the ranks wanted and the bins that hold them. */
static void
locate(pct *s)
{
	for (int i = 0; i < 2; i++) {
		double r = s->pc[i] / 100.0 * (double)(s->n - 1);
		uint64_t k = (uint64_t)floor(r);

		if (k > s->n - 1)
			k = s->n - 1;
		s->rank[2 * i] = k;
		s->rank[2 * i + 1] = k + 1 < s->n ? k + 1 : k;
	}
	for (int i = 0; i < NSTAT; i++) {
		uint64_t below = 0;
		size_t b = 0;

		while (b + 1 < s->bins && below + s->hist[b] <= s->rank[i])
			below += s->hist[b++];
		s->stat_bin[i] = b;
		s->stat_below[i] = below;
		s->stat_count[i] = s->hist[b];
		s->bin_min[i] = INFINITY;
		s->bin_max[i] = -INFINITY;
	}
}

static int
pct_next_pass(void *state)
{
	pct *s = state;

	if (s->pass == 1) {
		if (!s->n || !(s->min < s->max))
			return 0;
		s->scale = (double)s->bins / ((double)s->max - s->min);
		s->pass = 2;
		return 1;
	}
	if (s->pass == 2 && s->refine && s->hist && s->seen == s->n) {
		locate(s);
		free(s->hist);
		s->hist = NULL;
		s->hist_len = 0;
		s->seen = 0;
		s->pass = 3;
		return 1;
	}
	return 0;
}

/* Order statistic i, estimated from the histograms (see the top). */
static double
order_stat(const pct *s, int i)
{
	uint64_t k = s->rank[i], j = k - s->stat_below[i];
	uint64_t c = s->stat_count[i];
	double w = 1.0 / s->scale, a, v;
	size_t b = s->stat_bin[i];

	if (k == 0)
		return s->min;
	if (k == s->n - 1)
		return s->max;
	if (s->pass == 3 && j == 0)
		return s->bin_min[i];
	if (s->pass == 3 && j == c - 1)
		return s->bin_max[i];
	a = s->min + (double)b * w;
	if (s->pass == 3) {
		/* Not first in its bin: x_(k+1) shares the bin of x_(k),
		 * whose sub-bins are at (i / 2) * bins. */
		const uint64_t *sub = s->hist + (size_t)i / 2 * s->bins;
		size_t sb = 0;

		w /= (double)s->bins;
		while (sb + 1 < s->bins && sub[sb] <= j)
			j -= sub[sb++];
		c = sub[sb];
		a += (double)sb * w;
	}
	v = a + ((double)j + 0.5) / (double)c * w;
	if (v < s->min)
		v = s->min;
	if (v > s->max)
		v = s->max;
	return v;
}

static double
percentile(const pct *s, int i)
{
	double r = s->pc[i] / 100.0 * (double)(s->n - 1);
	double f = r - floor(r);
	double a = order_stat(s, 2 * i), b = order_stat(s, 2 * i + 1);

	return f == 0.0 ? a : a + f * (b - a);
}

static tm_status
pct_finish(void *state, float *lo, float *hi, tm_error *err)
{
	pct *s = state;

	if (!s->n)
		return tm_error_set(err, TM_ERR_INVALID, "saw no values");
	if (!(s->min < s->max)) {
		*lo = *hi = s->min;
		return TM_OK;
	}
	if (s->pass == 1 || !s->hist)
		return tm_error_set(err, TM_ERR_INTERNAL,
				    "finish before the histogram pass");
	if (s->seen != s->n)
		return tm_error_set(err, TM_ERR_INTERNAL,
				    "the data changed between passes (%llu "
				    "values in pass 1, %llu in pass %d)",
				    (unsigned long long)s->n,
				    (unsigned long long)s->seen, s->pass);
	if (s->pass == 2)
		locate(s);
	*lo = (float)percentile(s, 0);
	*hi = (float)percentile(s, 1);
	return TM_OK;
}

static size_t
pct_state_size(const void *state)
{
	const pct *s = state;

	return sizeof *s + (s->hist ? s->hist_len * sizeof *s->hist : 0);
}

static const tm_param_spec pct_params[] = {
	{ .name = "lo", .type = TM_PARAM_FLOAT, .def = "0.05",
	  .flags = TM_PARAM_HAS_MIN | TM_PARAM_HAS_MAX, .min = 0, .max = 100,
	  .help = "lower percentile, in percent (below hi)" },
	{ .name = "hi", .type = TM_PARAM_FLOAT, .def = "99.95",
	  .flags = TM_PARAM_HAS_MIN | TM_PARAM_HAS_MAX, .min = 0, .max = 100,
	  .help = "upper percentile, in percent" },
	{ .name = "bins", .type = TM_PARAM_INT, .def = "16384",
	  .flags = TM_PARAM_HAS_MIN | TM_PARAM_HAS_MAX, .min = 16,
	  .max = 1048576,
	  .help = "histogram bins over [min, max] (and sub-bins per bin)" },
	{ .name = "refine", .type = TM_PARAM_BOOL, .def = "true",
	  .help = "third pass: error range/bins^2 instead of range/bins" },
	TM_PARAM_END
};

static const tm_observer_ops pct_ops = {
	.create = pct_create,
	.destroy = pct_destroy,
	.observe = pct_observe,
	.next_pass = pct_next_pass,
	.merge = pct_merge,
	.finish = pct_finish,
	.state_size = pct_state_size,
	.clone = pct_clone,
};

TM_PLUGIN_DEFINE(TM_PLUGIN_OBSERVER, "percentile", "1.0",
		 "percentiles lo and hi (numpy's linear definition) from "
		 "histograms, 2 or 3 passes",
		 pct_params, &pct_ops)
