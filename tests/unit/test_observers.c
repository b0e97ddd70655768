/* tmpipe tests — the observer plugins percentile, kl and moving_minmax.
 *
 * The plugins come from the build tree ($TMPIPE_PLUGIN_PATH) through the
 * registry, and are driven here through their ops exactly as
 * core/calib.c drives them: per batch a fresh state (create in the first
 * pass, a clone of the accumulated state as the pass began in later
 * passes), observed once with the whole batch and merged into the
 * accumulated state in batch order; next_pass after each pass; finish.
 * The last suite runs them through the core's calibration too.
 *
 * Known answers are in tests/data/observers/expected.txt, written with
 * their inputs by tests/gen/observers_ref.py: numpy.percentile, an
 * independent numpy implementation of the entropy calibration, and
 * PyTorch's MovingAverageMinMaxObserver. */
#include "config.h"

#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/CUnit.h>
#include <yaml.h>

#include <tmpipe/tmpipe.h>

#include "calib_priv.h"
#include "loader_priv.h"
#include "params_priv.h"
#include "pipeline_priv.h"
#include "runner.h"

#define MSG_MAX (TM_ERROR_FILE_MAX + TM_ERROR_MSG_MAX + 8)
#define MAX_LINES 64

static tm_registry *reg;
static const tm_plugin *p_pct, *p_kl, *p_mm;
static char *lines[MAX_LINES];	/* expected.txt, without comments */
static size_t n_lines;

/* --- helpers ------------------------------------------------------------ */

static const tm_observer_ops *
ops_of(const tm_plugin *p)
{
	return p->desc->ops;
}

/* Parameters of plugin p from a YAML flow map; the compact form of
 * expected.txt ({lo:1,hi:99}) is accepted and spaced out first. The
 * document is parsed as "p.yaml". NULL with err set on failure. */
static tm_params *
params_of(const tm_plugin *p, const char *flow, tm_error *err)
{
	char text[512], label[64];
	size_t j = 0;
	yaml_parser_t parser;
	yaml_document_t doc;
	tm_yaml_src src;
	tm_params *out = NULL;
	int ok;

	tm_error_clear(err);
	for (size_t i = 0; flow[i] && j + 3 < sizeof text; i++) {
		text[j++] = flow[i];
		if ((flow[i] == ':' || flow[i] == ',') && flow[i + 1] != ' ')
			text[j++] = ' ';
	}
	text[j] = '\0';
	if (!yaml_parser_initialize(&parser)) {
		CU_FAIL("yaml_parser_initialize");
		return NULL;
	}
	yaml_parser_set_input_string(&parser, (const unsigned char *)text,
				     strlen(text));
	ok = yaml_parser_load(&parser, &doc);
	yaml_parser_delete(&parser);
	CU_ASSERT(ok);
	if (!ok)
		return NULL;
	src.doc = &doc;
	src.file = "p.yaml";
	src.basedir = "/base";
	src.first_override = 0;
	snprintf(label, sizeof label, "observer '%s'", p->desc->name);
	tm_priv_params_from_yaml(p->desc->params, &src,
				 yaml_document_get_root_node(&doc), NULL,
				 label, &out, err);
	yaml_document_delete(&doc);
	return out;
}

/* tests/data/observers/<name> as floats; NULL (and a failure) when it
 * cannot be read. */
static float *
load_bin(const char *name, size_t *n)
{
	char path[4096];
	FILE *fp;
	long size;
	float *v = NULL;

	*n = 0;
	snprintf(path, sizeof path, "%s/data/observers/%s", tm_test_srcdir(),
		 name);
	fp = fopen(path, "rb");
	CU_ASSERT_PTR_NOT_NULL(fp);
	if (!fp) {
		perror(path);
		return NULL;
	}
	if (fseek(fp, 0, SEEK_END) == 0 && (size = ftell(fp)) > 0 &&
	    fseek(fp, 0, SEEK_SET) == 0) {
		v = malloc((size_t)size);
		*n = (size_t)size / sizeof *v;
		if (v && fread(v, sizeof *v, *n, fp) != *n) {
			free(v);
			v = NULL;
		}
	}
	fclose(fp);
	CU_ASSERT_PTR_NOT_NULL(v);
	return v;
}

/* Splits line (a copy) into at most max fields; returns the count. */
static size_t
fields(const char *line, char *buf, size_t size, char **f, size_t max)
{
	size_t n = 0;
	char *save = NULL;

	snprintf(buf, size, "%s", line);
	for (char *t = strtok_r(buf, " \t\n", &save); t && n < max;
	     t = strtok_r(NULL, " \t\n", &save))
		f[n++] = t;
	return n;
}

static void
range_of(const float *x, size_t n, float *lo, float *hi)
{
	*lo = *hi = x[0];
	for (size_t i = 1; i < n; i++) {
		*lo = x[i] < *lo ? x[i] : *lo;
		*hi = x[i] > *hi ? x[i] : *hi;
	}
}

/* --- the driver: what core/calib.c does --------------------------------- */

typedef struct result {
	float lo, hi;
	int symmetric;
	size_t passes;
	size_t max_state;	/* the most state_size of any state */
	size_t acc_state;	/* the accumulated state's at the end */
} result;

/* Runs an observer over x (n values) repeated reps times, in batches
 * of batch values (the last one of each repetition may be short). split:
 * per-batch states merged in batch order, as the core does for an
 * observer with merge (and clone, in passes after the first); else every
 * batch is observed into the one state. */
static tm_status
drive(const tm_plugin *p, const tm_params *pr, const float *x, size_t n,
      size_t reps, size_t batch, int split, result *r, tm_error *err)
{
	const tm_observer_ops *o = ops_of(p);
	void *acc;
	tm_status st = TM_OK;

	memset(r, 0, sizeof *r);
	tm_error_clear(err);
	acc = o->create(pr, err);
	if (!acc)
		return err->code ? err->code : TM_ERR_INTERNAL;
	for (int first = 1;; first = 0) {
		int sp = split && o->merge && (first || o->clone);
		void *tmpl = NULL;

		r->passes++;
		if (!first && sp) {
			tmpl = o->clone(acc, err);
			if (!tmpl) {
				st = err->code ? err->code : TM_ERR_INTERNAL;
				goto out;
			}
		}
		for (size_t k = 0; !st && k < reps; k++)
			for (size_t off = 0; !st && off < n; off += batch) {
				size_t len = n - off < batch ? n - off : batch;
				void *b;

				if (!sp) {
					st = o->observe(acc, x + off, len, err);
					continue;
				}
				b = first ? o->create(pr, err)
					  : o->clone(tmpl, err);
				if (!b) {
					st = err->code ? err->code
						       : TM_ERR_INTERNAL;
					break;
				}
				st = o->observe(b, x + off, len, err);
				if (o->state_size(b) > r->max_state)
					r->max_state = o->state_size(b);
				if (!st)
					st = o->merge(acc, b, err);
				o->destroy(b);
				if (o->state_size(acc) > r->max_state)
					r->max_state = o->state_size(acc);
			}
		if (tmpl)
			o->destroy(tmpl);
		if (st)
			goto out;
		if (o->state_size(acc) > r->max_state)
			r->max_state = o->state_size(acc);
		if (!o->next_pass || !o->next_pass(acc))
			break;
	}
	st = o->finish(acc, &r->lo, &r->hi, err);
	r->symmetric = o->symmetric ? o->symmetric(acc) : 0;
	r->acc_state = o->state_size(acc);
out:
	o->destroy(acc);
	return st;
}

/* The case's params, or NULL (and a failure). */
static tm_params *
case_params(const tm_plugin *p, const char *flow)
{
	tm_error err;
	tm_params *pr = params_of(p, flow, &err);

	if (!pr)
		fprintf(stderr, "\nparams %s: %s\n", flow, err.msg);
	CU_ASSERT_PTR_NOT_NULL(pr);
	return pr;
}

/* --- percentile --------------------------------------------------------- */

/* Every percentile line of expected.txt: numpy.percentile within the
 * documented bound, R / bins^2 refined and R / bins not (R = max - min),
 * plus float rounding of the answer. Batches of 1000 values. */
static void
test_percentile_numpy(void)
{
	size_t cases = 0;

	for (size_t l = 0; l < n_lines; l++) {
		char buf[1024], *f[8];
		size_t nf = fields(lines[l], buf, sizeof buf, f, 8), n;
		float *x, mn, mx;
		tm_params *pr;
		result r;
		tm_error err;
		double want[2], got[2], bound, R;
		int64_t bins;

		if (strcmp(f[0], "percentile") != 0)
			continue;
		CU_ASSERT_EQUAL(nf, 5);
		if (nf != 5)
			continue;
		want[0] = strtod(f[3], NULL);
		want[1] = strtod(f[4], NULL);
		x = load_bin(f[1], &n);
		pr = case_params(p_pct, f[2]);
		if (!x || !pr) {
			free(x);
			tm_priv_params_free(pr);
			continue;
		}
		cases++;
		range_of(x, n, &mn, &mx);
		R = (double)mx - mn;
		bins = tm_params_get_int(pr, "bins");
		bound = tm_params_get_bool(pr, "refine")
				? R / ((double)bins * (double)bins)
				: R / (double)bins;
		CU_ASSERT_EQUAL(drive(p_pct, pr, x, n, 1, 1000, 1, &r, &err),
				TM_OK);
		CU_ASSERT_EQUAL(r.passes,
				R == 0 ? 1
				       : tm_params_get_bool(pr, "refine") ? 3
									  : 2);
		CU_ASSERT_EQUAL(r.symmetric, 0);
		got[0] = r.lo;
		got[1] = r.hi;
		for (int i = 0; i < 2; i++) {
			double e = fabs(got[i] - want[i]);
			double tol = bound + fabs(want[i]) * FLT_EPSILON;

			if (e > tol)
				fprintf(stderr,
					"\n%s %s: got %.9g, numpy %.17g, "
					"error %.3g > %.3g\n",
					f[1], f[2], got[i], want[i], e, tol);
			CU_ASSERT(e <= tol);
			printf("\n  percentile %s %s %s: error %.3g, bound "
			       "%.3g",
			       f[1], f[2], i ? "hi" : "lo", e, bound);
		}
		tm_priv_params_free(pr);
		free(x);
	}
	printf("\n  ");
	CU_ASSERT(cases >= 10);
}

/* The ends that need no estimate are exact: 0 and 100 are the min and
 * max, and a constant tensor is its value whatever the percentiles. */
static void
test_percentile_exact(void)
{
	static const float c[5] = { 0.75f, 0.75f, 0.75f, 0.75f, 0.75f };
	static const float two[2] = { -1.5f, 2.25f };
	tm_params *pr = case_params(p_pct, "{lo: 0, hi: 100}");
	tm_params *def = case_params(p_pct, "{}");
	tm_params *mid = case_params(p_pct, "{lo: 50, hi: 50.5}");
	result r;
	tm_error err;

	if (!pr || !def || !mid)
		goto out;
	CU_ASSERT_EQUAL(drive(p_pct, pr, two, 2, 1, 1, 1, &r, &err), TM_OK);
	CU_ASSERT_EQUAL(r.lo, -1.5f);
	CU_ASSERT_EQUAL(r.hi, 2.25f);
	/* A constant tensor needs one pass, and no histogram. */
	CU_ASSERT_EQUAL(drive(p_pct, def, c, 5, 1, 2, 1, &r, &err), TM_OK);
	CU_ASSERT_EQUAL(r.lo, 0.75f);
	CU_ASSERT_EQUAL(r.hi, 0.75f);
	CU_ASSERT_EQUAL(r.passes, 1);
	/* One value: every percentile is that value. */
	CU_ASSERT_EQUAL(drive(p_pct, def, two + 1, 1, 1, 1, 1, &r, &err),
			TM_OK);
	CU_ASSERT_EQUAL(r.lo, 2.25f);
	CU_ASSERT_EQUAL(r.hi, 2.25f);
	/* Two values: ranks 0.5 and 0.505, interpolated between the exact
	 * ends (lo and hi share their order statistics). */
	CU_ASSERT_EQUAL(drive(p_pct, mid, two, 2, 1, 1, 1, &r, &err), TM_OK);
	CU_ASSERT_EQUAL(r.lo, (float)(-1.5 + 0.5 * 3.75));
	CU_ASSERT_DOUBLE_EQUAL(r.hi, -1.5 + 0.505 * 3.75, 1e-6);
out:
	tm_priv_params_free(pr);
	tm_priv_params_free(def);
	tm_priv_params_free(mid);
}

/* --- kl ----------------------------------------------------------------- */

/* Runs kl on the file f[1] with the parameters f[2] of an expected.txt
 * line that gives bins, levels, edge and numpy's T: checks the parameters
 * and the two passes, sets *thr to numpy's threshold (T + 0.5) * edge /
 * bins, in double, rounded to float. 0 when the case could not run. */
static int
kl_line(char **f, long bins, long levels, double edge, long T, result *r,
	float *thr)
{
	size_t n;
	float *x = load_bin(f[1], &n);
	tm_params *pr = case_params(p_kl, f[2]);
	int ran = x && pr;
	tm_error err;

	if (ran) {
		CU_ASSERT_EQUAL(tm_params_get_int(pr, "bins"), bins);
		CU_ASSERT_EQUAL(tm_params_get_int(pr, "levels"), levels);
		CU_ASSERT_EQUAL(drive(p_kl, pr, x, n, 1, 1024, 1, r, &err),
				TM_OK);
		CU_ASSERT_EQUAL(r->passes, 2);
		*thr = (float)(((double)T + 0.5) * edge / (double)bins);
		if (r->hi != *thr && r->lo != -*thr)
			fprintf(stderr,
				"\nkl %s %s: range [%.9g, %.9g], numpy's T = "
				"%ld gives %.9g\n",
				f[1], f[2], r->lo, r->hi, T, *thr);
	}
	free(x);
	tm_priv_params_free(pr);
	return ran;
}

/* Every kl line: the threshold of numpy's T, to the bit; not the
 * TinyMind answer (T = levels, edge / 16 by default). */
static void
test_kl_numpy(void)
{
	size_t cases = 0;

	for (size_t l = 0; l < n_lines; l++) {
		char buf[1024], *f[10];
		size_t nf = fields(lines[l], buf, sizeof buf, f, 10);
		long bins, levels, T;
		int nonneg;
		double edge;
		float thr;
		result r;

		if (strcmp(f[0], "kl") != 0)
			continue;
		CU_ASSERT_EQUAL(nf, 10);
		if (nf != 10)
			continue;
		bins = strtol(f[3], NULL, 10);
		levels = strtol(f[4], NULL, 10);
		nonneg = (int)strtol(f[5], NULL, 10);
		edge = strtod(f[6], NULL);
		T = strtol(f[7], NULL, 10);
		if (!kl_line(f, bins, levels, edge, T, &r, &thr))
			continue;
		cases++;
		CU_ASSERT_EQUAL(r.hi, thr);
		CU_ASSERT_EQUAL(r.lo, nonneg ? 0.0f : -thr);
		CU_ASSERT_EQUAL(r.symmetric, !nonneg);
		/* Far from T = levels: at least 10 bins above it. */
		CU_ASSERT(T > levels + 10);
		CU_ASSERT(fabs(r.hi - edge * (double)levels / (double)bins) >
			  10.0 * edge / (double)bins);
	}
	CU_ASSERT(cases >= 5);
}

/* Every kl_asym line: mode asymmetric keeps kl's threshold (numpy's T, to
 * the bit), clips (-threshold, threshold) to the data's [min, max] and
 * asks for a zero point. */
static void
test_kl_asymmetric(void)
{
	size_t cases = 0;

	for (size_t l = 0; l < n_lines; l++) {
		char buf[1024], *f[10];
		size_t nf = fields(lines[l], buf, sizeof buf, f, 10);
		float thr, mn, mx;
		result r;

		if (strcmp(f[0], "kl_asym") != 0)
			continue;
		CU_ASSERT_EQUAL(nf, 9);
		if (nf != 9 ||
		    !kl_line(f, strtol(f[3], NULL, 10), strtol(f[4], NULL, 10),
			     strtod(f[5], NULL), strtol(f[6], NULL, 10), &r,
			     &thr))
			continue;
		cases++;
		mn = strtof(f[7], NULL);
		mx = strtof(f[8], NULL);
		CU_ASSERT_EQUAL(r.lo, -thr > mn ? -thr : mn);
		CU_ASSERT_EQUAL(r.hi, thr < mx ? thr : mx);
		CU_ASSERT_EQUAL(r.symmetric, 0);
		if (strcmp(f[1], "kl_skew.bin") == 0) {
			/* Both clips act: -threshold inside the data, the
			 * positive end at the largest value. */
			CU_ASSERT(-thr > mn && thr > mx);
			CU_ASSERT_EQUAL(r.lo, -thr);
			CU_ASSERT_EQUAL(r.hi, mx);
		}
	}
	CU_ASSERT_EQUAL(cases, 3);
}

/* Mode asymmetric on a nonnegative tensor is mode nonnegative. */
static void
test_kl_asymmetric_relu(void)
{
	tm_params *as = case_params(p_kl, "{mode: asymmetric}");
	tm_params *nn = case_params(p_kl, "{mode: nonnegative}");
	float *x;
	size_t n;
	result ra, rn;
	tm_error err;

	x = load_bin("kl_relu.bin", &n);
	if (!x || !as || !nn)
		goto out;
	CU_ASSERT_EQUAL(drive(p_kl, as, x, n, 1, 1000, 1, &ra, &err), TM_OK);
	CU_ASSERT_EQUAL(drive(p_kl, nn, x, n, 1, 1000, 1, &rn, &err), TM_OK);
	CU_ASSERT_EQUAL(ra.lo, 0.0f);
	CU_ASSERT_EQUAL(ra.lo, rn.lo);
	CU_ASSERT_EQUAL(ra.hi, rn.hi);
	CU_ASSERT_EQUAL(ra.symmetric, rn.symmetric);
out:
	free(x);
	tm_priv_params_free(as);
	tm_priv_params_free(nn);
}

/* Special tensors: all zeros (one pass, [0, 0]); one value repeated
 * (one nonzero bin: KL 0 from the first T that keeps it). */
static void
test_kl_special(void)
{
	float z[64] = { 0 }, c[64];
	tm_params *pr = case_params(p_kl, "{}");
	tm_params *nn = case_params(p_kl, "{mode: nonnegative}");
	result r;
	tm_error err;

	for (size_t i = 0; i < 64; i++)
		c[i] = i % 2 ? -3.0f : 3.0f;
	if (!pr || !nn)
		goto out;
	CU_ASSERT_EQUAL(drive(p_kl, pr, z, 64, 1, 16, 1, &r, &err), TM_OK);
	CU_ASSERT_EQUAL(r.passes, 1);
	CU_ASSERT_EQUAL(r.lo, 0.0f);
	CU_ASSERT_EQUAL(r.hi, 0.0f);
	CU_ASSERT_EQUAL(r.symmetric, 1);
	CU_ASSERT_EQUAL(drive(p_kl, nn, z, 64, 1, 16, 1, &r, &err), TM_OK);
	CU_ASSERT_EQUAL(r.hi, 0.0f);
	CU_ASSERT_EQUAL(r.symmetric, 0);
	/* |x| = 3 lands in the last bin: T = bins, (2048.5 / 2048) * 3. */
	CU_ASSERT_EQUAL(drive(p_kl, pr, c, 64, 1, 16, 1, &r, &err), TM_OK);
	CU_ASSERT_EQUAL(r.hi, (float)(2048.5 * 3.0 / 2048.0));
	CU_ASSERT_EQUAL(r.lo, -r.hi);
out:
	tm_priv_params_free(pr);
	tm_priv_params_free(nn);
}

/* --- merge and memory --------------------------------------------------- */

/* One state seeing everything, two halves merged, and 1000-value batches
 * give the same bits. */
static void
check_merge(const tm_plugin *p, const char *flow, const char *file)
{
	tm_params *pr = case_params(p, flow);
	size_t n;
	float *x = load_bin(file, &n);
	result one, halves, many;
	tm_error err;

	if (!pr || !x)
		goto out;
	CU_ASSERT_EQUAL(drive(p, pr, x, n, 1, n, 0, &one, &err), TM_OK);
	CU_ASSERT_EQUAL(drive(p, pr, x, n, 1, (n + 1) / 2, 1, &halves, &err),
			TM_OK);
	CU_ASSERT_EQUAL(drive(p, pr, x, n, 1, 1000, 1, &many, &err), TM_OK);
	CU_ASSERT(memcmp(&one.lo, &halves.lo, sizeof one.lo) == 0);
	CU_ASSERT(memcmp(&one.hi, &halves.hi, sizeof one.hi) == 0);
	CU_ASSERT(memcmp(&one.lo, &many.lo, sizeof one.lo) == 0);
	CU_ASSERT(memcmp(&one.hi, &many.hi, sizeof one.hi) == 0);
	CU_ASSERT_EQUAL(one.passes, halves.passes);
out:
	tm_priv_params_free(pr);
	free(x);
}

static void
test_merge_halves(void)
{
	check_merge(p_pct, "{}", "pct_student.bin");
	check_merge(p_pct, "{refine: false}", "pct_normal.bin");
	check_merge(p_pct, "{lo: 3, hi: 97, bins: 100}", "pct_lognormal.bin");
	check_merge(p_kl, "{}", "kl_bulk.bin");
	check_merge(p_kl, "{mode: nonnegative}", "kl_relu.bin");
	check_merge(p_kl, "{mode: asymmetric}", "kl_skew.bin");
}

/* The observer's own state (every per-batch state and the accumulated
 * one) is the same size when the data is seen 10 times; and holds the
 * histogram it documents. */
static void
check_flat(const tm_plugin *p, const char *flow, const char *file,
	   size_t lo_bytes, size_t hi_bytes)
{
	tm_params *pr = case_params(p, flow);
	size_t n;
	float *x = load_bin(file, &n);
	result once, ten;
	tm_error err;

	if (!pr || !x)
		goto out;
	CU_ASSERT_EQUAL(drive(p, pr, x, n, 1, 512, 1, &once, &err), TM_OK);
	CU_ASSERT_EQUAL(drive(p, pr, x, n, 10, 512, 1, &ten, &err), TM_OK);
	CU_ASSERT_EQUAL(once.max_state, ten.max_state);
	CU_ASSERT_EQUAL(once.acc_state, ten.acc_state);
	CU_ASSERT(once.max_state >= lo_bytes);
	CU_ASSERT(once.max_state <= hi_bytes);
	if (once.max_state < lo_bytes || once.max_state > hi_bytes)
		fprintf(stderr, "\n%s %s: state %zu bytes, not in [%zu, %zu]\n",
			p->desc->name, flow, once.max_state, lo_bytes,
			hi_bytes);
	/* Only the distribution matters to these two. */
	if (p != p_mm) {
		CU_ASSERT_EQUAL(once.passes, ten.passes);
	}
	if (p == p_kl) {
		CU_ASSERT_EQUAL(once.lo, ten.lo);
		CU_ASSERT_EQUAL(once.hi, ten.hi);
	}
out:
	tm_priv_params_free(pr);
	free(x);
}

static void
test_memory_flat(void)
{
	/* Pass 2: 16384 counts; pass 3: 2 * 16384. */
	check_flat(p_pct, "{}", "pct_normal.bin", 2 * 16384 * 8,
		   2 * 16384 * 8 + 1024);
	check_flat(p_pct, "{refine: false}", "pct_student.bin", 16384 * 8,
		   16384 * 8 + 1024);
	check_flat(p_kl, "{}", "kl_bulk.bin", 2048 * 8, 2048 * 8 + 1024);
	check_flat(p_kl, "{bins: 4096, mode: auto}", "kl_relu.bin", 4096 * 8,
		   4096 * 8 + 1024);
	check_flat(p_mm, "{}", "mm_batches.bin", 1, 64);
}

/* --- moving_minmax ------------------------------------------------------ */

/* The moving averages after each batch, merged as the core does and
 * observed into one state: PyTorch's, to the bit. */
static void
test_moving_torch(void)
{
	const tm_observer_ops *o = ops_of(p_mm);
	size_t cases = 0;

	for (size_t l = 0; l < n_lines; l++) {
		char buf[2048], *f[64];
		size_t nf = fields(lines[l], buf, sizeof buf, f, 64), n, batch;
		float *x;
		tm_params *pr;
		void *acc, *seq;
		tm_error err;

		if (strcmp(f[0], "moving_minmax") != 0)
			continue;
		batch = (size_t)strtol(f[2], NULL, 10);
		x = load_bin(f[1], &n);
		pr = case_params(p_mm, f[3]);
		acc = pr ? o->create(pr, &err) : NULL;
		seq = pr ? o->create(pr, &err) : NULL;
		CU_ASSERT_EQUAL(nf, 4 + 2 * (n / batch));
		if (!x || !acc || !seq || nf != 4 + 2 * (n / batch))
			goto next;
		cases++;
		for (size_t k = 0; k < n / batch; k++) {
			void *b = o->create(pr, &err);
			float want_lo = (float)strtod(f[4 + 2 * k], NULL);
			float want_hi = (float)strtod(f[5 + 2 * k], NULL);
			float lo, hi;

			CU_ASSERT_PTR_NOT_NULL(b);
			if (!b)
				break;
			CU_ASSERT_EQUAL(o->observe(b, x + k * batch, batch,
						   &err),
					TM_OK);
			CU_ASSERT_EQUAL(o->merge(acc, b, &err), TM_OK);
			o->destroy(b);
			CU_ASSERT_EQUAL(o->finish(acc, &lo, &hi, &err), TM_OK);
			CU_ASSERT_EQUAL(lo, want_lo);
			CU_ASSERT_EQUAL(hi, want_hi);
			if (lo != want_lo || hi != want_hi)
				fprintf(stderr,
					"\n%s batch %zu: [%.9g, %.9g], torch "
					"[%.9g, %.9g]\n",
					f[3], k, lo, hi, want_lo, want_hi);
			CU_ASSERT_EQUAL(o->observe(seq, x + k * batch, batch,
						   &err),
					TM_OK);
			CU_ASSERT_EQUAL(o->finish(seq, &lo, &hi, &err), TM_OK);
			CU_ASSERT_EQUAL(lo, want_lo);
			CU_ASSERT_EQUAL(hi, want_hi);
		}
next:
		if (acc)
			o->destroy(acc);
		if (seq)
			o->destroy(seq);
		tm_priv_params_free(pr);
		free(x);
	}
	CU_ASSERT_EQUAL(cases, 2);
}

/* By hand, c = 0.5: batches [1, 3], [-1, 5], [2, 2] (and an empty one,
 * which changes nothing) give [1, 3], [0, 4], [1, 3]. */
static void
test_moving_hand(void)
{
	static const float x[6] = { 1, 3, -1, 5, 2, 2 };
	static const float want[3][2] = { { 1, 3 }, { 0, 4 }, { 1, 3 } };
	const tm_observer_ops *o = ops_of(p_mm);
	tm_params *pr = case_params(p_mm, "{averaging_constant: 0.5}");
	tm_params *one = case_params(p_mm, "{averaging_constant: 1}");
	result r;
	tm_error err;
	void *acc = pr ? o->create(pr, &err) : NULL;

	CU_ASSERT_PTR_NOT_NULL(acc);
	if (!acc)
		goto out;
	for (size_t k = 0; k < 3; k++) {
		float lo, hi;

		CU_ASSERT_EQUAL(o->observe(acc, x + 2 * k, 2, &err), TM_OK);
		CU_ASSERT_EQUAL(o->observe(acc, x, 0, &err), TM_OK);
		CU_ASSERT_EQUAL(o->finish(acc, &lo, &hi, &err), TM_OK);
		CU_ASSERT_EQUAL(lo, want[k][0]);
		CU_ASSERT_EQUAL(hi, want[k][1]);
	}
	/* Merged per batch, the same; c = 1 follows the last batch. */
	CU_ASSERT_EQUAL(drive(p_mm, pr, x, 6, 1, 2, 1, &r, &err), TM_OK);
	CU_ASSERT_EQUAL(r.lo, 1.0f);
	CU_ASSERT_EQUAL(r.hi, 3.0f);
	CU_ASSERT_EQUAL(r.passes, 1);
	CU_ASSERT_EQUAL(drive(p_mm, one, x, 6, 1, 2, 1, &r, &err), TM_OK);
	CU_ASSERT_EQUAL(r.lo, 2.0f);
	CU_ASSERT_EQUAL(r.hi, 2.0f);
	o->destroy(acc);
	acc = NULL;
out:
	tm_priv_params_free(pr);
	tm_priv_params_free(one);
}

/* --- errors ------------------------------------------------------------- */

/* Creating p with flow must fail with exactly want. */
#define EXPECT_CREATE_ERR(p, flow, want)                                     \
	expect_create_err((p), (flow), (want), __FILE__, __LINE__)

static void
expect_create_err(const tm_plugin *p, const char *flow, const char *want,
		  const char *file, int line)
{
	tm_error err;
	tm_params *pr = params_of(p, flow, &err);
	void *s = NULL;

	if (pr) {
		s = ops_of(p)->create(pr, &err);
		CU_ASSERT_PTR_NULL(s);
		if (s)
			ops_of(p)->destroy(s);
	}
	CU_ASSERT_NOT_EQUAL(err.code, TM_OK);
	tm_test_check_err(&err, want, file, line);
	tm_priv_params_free(pr);
}

static void
test_errors_params(void)
{
	/* Cross-field checks in create, at the key the user wrote. */
	EXPECT_CREATE_ERR(p_pct, "{lo: 99, hi: 1}",
			  "p.yaml:1:10: lo (99) must be below hi (1)");
	EXPECT_CREATE_ERR(p_pct, "{hi: 0.05}",
			  "p.yaml:1:2: lo (0.05) must be below hi (0.05)");
	EXPECT_CREATE_ERR(p_pct, "{lo: 99.95}",
			  "p.yaml:1:2: lo (99.95) must be below hi (99.95)");
	EXPECT_CREATE_ERR(p_kl, "{bins: 100}",
			  "p.yaml:1:2: levels (128) must not exceed bins "
			  "(100)");
	EXPECT_CREATE_ERR(p_kl, "{bins: 512, levels: 1024}",
			  "p.yaml:1:13: levels (1024) must not exceed bins "
			  "(512)");
	EXPECT_CREATE_ERR(p_mm, "{averaging_constant: 0}",
			  "p.yaml:1:2: averaging_constant must be above 0 "
			  "(got 0)");
	/* Bounds and choices: the core's checks of the declared table. */
	EXPECT_CREATE_ERR(p_pct, "{hi: 100.5}",
			  "p.yaml:1:6: hi: '100.5' is not a number between 0 "
			  "and 100");
	EXPECT_CREATE_ERR(p_kl, "{mode: relu}",
			  "p.yaml:1:8: mode: 'relu' is not one of symmetric, "
			  "nonnegative, auto, asymmetric");
	EXPECT_CREATE_ERR(p_mm, "{averaging_constant: 1.5}",
			  "p.yaml:1:22: averaging_constant: '1.5' is not a "
			  "number between 0 and 1");
}

/* Finishing an observer that saw nothing fails, also after next_pass;
 * so does kl in mode nonnegative on a negative value. */
static void
test_errors_data(void)
{
	static const float neg[6] = { 0.5f, -0.25f, 2.0f, -1.75f, 0.0f, 1 };
	const tm_plugin *ps[3] = { p_pct, p_kl, p_mm };
	char msg[MSG_MAX];
	tm_params *pr = case_params(p_kl, "{mode: nonnegative}");
	result r;
	tm_error err;

	for (int i = 0; i < 3; i++) {
		const tm_observer_ops *o = ops_of(ps[i]);
		tm_params *def = case_params(ps[i], "{}");
		void *s = def ? o->create(def, &err) : NULL;
		float lo = 7, hi = 7;

		CU_ASSERT_PTR_NOT_NULL(s);
		if (s) {
			CU_ASSERT_EQUAL(o->observe(s, neg, 0, &err), TM_OK);
			CU_ASSERT(!o->next_pass || !o->next_pass(s));
			tm_error_clear(&err);
			CU_ASSERT_EQUAL(o->finish(s, &lo, &hi, &err),
					TM_ERR_INVALID);
			CHECK_STR(tm_error_format(&err, msg, sizeof msg),
				  "saw no values");
			o->destroy(s);
		}
		tm_priv_params_free(def);
	}
	if (!pr)
		return;
	/* The smallest value the state saw: its batch's, per batch. */
	CU_ASSERT_EQUAL(drive(p_kl, pr, neg, 6, 1, 3, 1, &r, &err),
			TM_ERR_INVALID);
	CHECK_STR(tm_error_format(&err, msg, sizeof msg),
		  "mode nonnegative, but the tensor holds negative values "
		  "(the smallest seen: -0.25); use mode symmetric or auto");
	CU_ASSERT_EQUAL(drive(p_kl, pr, neg, 6, 1, 6, 0, &r, &err),
			TM_ERR_INVALID);
	CHECK_STR(tm_error_format(&err, msg, sizeof msg),
		  "mode nonnegative, but the tensor holds negative values "
		  "(the smallest seen: -1.75); use mode symmetric or auto");
	tm_priv_params_free(pr);
}

/* --- through the core's calibration ------------------------------------- */

/* A version 1.0 .npy of rows x 2 float32. */
static void
write_npy(const char *path, size_t rows, const float *v)
{
	char hdr[128];
	size_t hlen;
	FILE *fp;

	hlen = (size_t)snprintf(hdr, sizeof hdr,
				"{'descr': '<f4', 'fortran_order': False, "
				"'shape': (%zu, 2), }",
				rows);
	while ((10 + hlen + 1) % 64)
		hdr[hlen++] = ' ';
	hdr[hlen++] = '\n';
	fp = fopen(path, "wb");
	CU_ASSERT_PTR_NOT_NULL(fp);
	if (!fp)
		return;
	fwrite("\x93NUMPY\x01\x00", 1, 8, fp);
	fputc((int)(hlen & 0xff), fp);
	fputc((int)(hlen >> 8), fp);
	fwrite(hdr, 1, hlen, fp);
	fwrite(v, sizeof *v, rows * 2, fp);
	CU_ASSERT_EQUAL(fclose(fp), 0);
}

/* Calibrates "x -> relu -> r" on rows x 2 values of data with observer
 * (a YAML flow map naming it) and threads threads; *m is the model. */
static tm_status
calibrate(const char *data, const char *observer, size_t threads,
	  tm_model **m, tm_calib_stats *stats, tm_error *err)
{
	char path[4096], text[8192];
	tm_pipeline *pl = NULL;
	const tm_frontend_ops *fe;
	tm_status st;

	*m = NULL;
	snprintf(path, sizeof path, "%s/calib.yaml", tm_test_tmpdir());
	snprintf(text, sizeof text,
		 "tmpipe: 1\n"
		 "model:\n"
		 "  frontend: npy\n"
		 "  inputs: {x: [2]}\n"
		 "  layers:\n"
		 "    - {name: r, op: relu, input: x}\n"
		 "calibration:\n"
		 "  data: %s\n"
		 "  batch: 16\n"
		 "  observer: %s\n",
		 data, observer);
	tm_test_write_file(path, text);
	tm_error_clear(err);
	st = tm_pipeline_load(path, reg, NULL, &pl, err);
	if (st)
		return st;
	pl->threads = threads;
	fe = pl->frontend.plugin->desc->ops;
	*m = tm_model_new();
	st = *m ? fe->load(pl->frontend.params, *m, err) : TM_ERR_NOMEM;
	if (!st)
		st = tm_model_finalize(*m, err);
	if (!st)
		st = tm_priv_calibrate(*m, pl, stats, err);
	if (st) {
		tm_model_free(*m);
		*m = NULL;
	}
	tm_pipeline_free(pl);
	return st;
}

/* The core's calibration gives each observer's tensors the ranges the
 * driver above finds on the same batches (16 samples: 32 values), with
 * 1 thread and with 3, and the passes each asks for. */
static void
test_core_calibration(void)
{
	static const struct {
		const tm_plugin **p;
		const char *observer, *flow;
		size_t passes;
	} obs[] = {
		{ &p_pct, "{name: percentile, lo: 1, hi: 99}",
		  "{lo: 1, hi: 99}", 3 },
		{ &p_kl, "{name: kl, mode: auto}", "{mode: auto}", 2 },
		{ &p_mm, "{name: moving_minmax, averaging_constant: 0.1}",
		  "{averaging_constant: 0.1}", 1 },
	};
	static const size_t threads[] = { 1, 3 };
	char data[4096];
	size_t n, rows;
	float *x = load_bin("kl_bulk.bin", &n), *relu;

	if (!x)
		return;
	rows = 1000;
	CU_ASSERT(n >= 2 * rows);
	relu = malloc(2 * rows * sizeof *relu);
	CU_ASSERT_PTR_NOT_NULL(relu);
	if (!relu) {
		free(x);
		return;
	}
	for (size_t i = 0; i < 2 * rows; i++)
		relu[i] = x[i] > 0 ? x[i] : 0.0f;
	snprintf(data, sizeof data, "%s/calib.npy", tm_test_tmpdir());
	write_npy(data, rows, x);
	for (size_t i = 0; i < TM_ARRAY_LEN(obs); i++) {
		const tm_plugin *p = *obs[i].p;
		tm_params *pr = case_params(p, obs[i].flow);
		result want_x, want_r;
		tm_error err;

		if (!pr)
			continue;
		CU_ASSERT_EQUAL(drive(p, pr, x, 2 * rows, 1, 32, 1, &want_x,
				      &err),
				TM_OK);
		CU_ASSERT_EQUAL(drive(p, pr, relu, 2 * rows, 1, 32, 1, &want_r,
				      &err),
				TM_OK);
		for (size_t t = 0; t < TM_ARRAY_LEN(threads); t++) {
			tm_model *m;
			tm_calib_stats stats;
			const tm_tensor *tx, *tr;

			CU_ASSERT_EQUAL(calibrate(data, obs[i].observer,
						  threads[t], &m, &stats,
						  &err),
					TM_OK);
			if (!m) {
				fprintf(stderr, "\ncalibrate: %s\n", err.msg);
				continue;
			}
			CU_ASSERT_EQUAL(stats.passes, obs[i].passes);
			tx = tm_model_find_tensor(m, "x");
			tr = tm_model_find_tensor(m, "r");
			CU_ASSERT(tx && tr);
			if (!tx || !tr) {
				tm_model_free(m);
				continue;
			}
			CU_ASSERT_EQUAL(tx->lo, want_x.lo);
			CU_ASSERT_EQUAL(tx->hi, want_x.hi);
			CU_ASSERT_EQUAL(tx->symmetric_range, want_x.symmetric);
			CU_ASSERT_EQUAL(tr->lo, want_r.lo);
			CU_ASSERT_EQUAL(tr->hi, want_r.hi);
			CU_ASSERT_EQUAL(tr->symmetric_range, want_r.symmetric);
			CHECK_STR(tx->observer, p->desc->name);
			tm_model_free(m);
		}
		tm_priv_params_free(pr);
	}
	free(relu);
	free(x);
}

/* NaN never reaches an observer: the core names tensor and sample. */
static void
test_core_nan(void)
{
	static const char *const observers[] = { "percentile", "kl",
						 "moving_minmax" };
	char data[4096], msg[MSG_MAX];
	float v[40];

	for (size_t i = 0; i < 40; i++)
		v[i] = (float)i - 20.0f;
	v[2 * 1 + 1] = NAN;	/* sample 1 */
	snprintf(data, sizeof data, "%s/nan.npy", tm_test_tmpdir());
	write_npy(data, 20, v);
	for (size_t i = 0; i < TM_ARRAY_LEN(observers); i++) {
		tm_model *m;
		tm_calib_stats stats;
		tm_error err;

		CU_ASSERT_EQUAL(calibrate(data, observers[i], 2, &m, &stats,
					  &err),
				TM_ERR_NUMERIC);
		CHECK_STR(tm_error_format(&err, msg, sizeof msg),
			  "tensor 'x': sample 1 holds NaN");
		tm_model_free(m);
	}
}

/* --- main --------------------------------------------------------------- */

static const tm_test_case cases[] = {
	{ "percentile vs numpy.percentile", test_percentile_numpy },
	{ "percentile exact ends and constants", test_percentile_exact },
	{ "kl vs numpy entropy calibration", test_kl_numpy },
	{ "kl zero and one-bin tensors", test_kl_special },
	{ "kl mode asymmetric vs numpy (ONNX Runtime's clip)",
	  test_kl_asymmetric },
	{ "kl mode asymmetric on a ReLU output is nonnegative",
	  test_kl_asymmetric_relu },
	{ "merge of halves equals one pass", test_merge_halves },
	{ "state size flat over 10x the data", test_memory_flat },
	{ "moving_minmax vs PyTorch", test_moving_torch },
	{ "moving_minmax by hand", test_moving_hand },
	{ "errors: parameters", test_errors_params },
	{ "errors: data", test_errors_data },
	{ "through the core's calibration", test_core_calibration },
	{ "NaN rejected before the observers", test_core_nan },
	{ NULL, NULL }
};

static int
find(const char *name, const tm_plugin **out)
{
	tm_error err;

	tm_error_clear(&err);
	if (tm_registry_find(reg, name, TM_PLUGIN_OBSERVER, out, &err)) {
		fprintf(stderr, "%s: %s\n", name, err.msg);
		return -1;
	}
	return 0;
}

static int
load_expected(void)
{
	char path[4096], line[4096];
	FILE *fp;

	snprintf(path, sizeof path, "%s/data/observers/expected.txt",
		 tm_test_srcdir());
	fp = fopen(path, "r");
	if (!fp) {
		perror(path);
		return -1;
	}
	while (fgets(line, sizeof line, fp) && n_lines < MAX_LINES) {
		if (line[0] == '#' || line[0] == '\n')
			continue;
		line[strcspn(line, "\n")] = '\0';
		lines[n_lines] = strdup(line);
		if (!lines[n_lines])
			break;
		n_lines++;
	}
	fclose(fp);
	return n_lines ? 0 : -1;
}

static int
setup(void)
{
	tm_error err;

	reg = tm_registry_new();
	tm_error_clear(&err);
	if (!reg || tm_registry_scan(reg, NULL, NULL, NULL, &err)) {
		fprintf(stderr, "registry: %s\n", err.msg);
		return -1;
	}
	if (find("percentile", &p_pct) || find("kl", &p_kl) ||
	    find("moving_minmax", &p_mm))
		return -1;
	return load_expected();
}

int
main(void)
{
	int rc = 99;

	if (!setup() && !tm_test_add_suite("observers", cases))
		rc = tm_test_run();
	for (size_t i = 0; i < n_lines; i++)
		free(lines[i]);
	tm_registry_free(reg);
	return rc;
}
