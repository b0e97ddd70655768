/* tmpipe bench — libtmrt's int8 inference against the float reference.
 *
 *	int8 [-P plugin_dir] [-r runs] [-n name] pipeline.yaml input.npy
 *
 * The pipeline must calibrate (so tm_pipeline_run returns the quantized
 * model); its calibration data is the benchmark's input. The model is
 * lowered to libtmrt (core/lower.c, as the blob and c_header emitters
 * do) and then, over every sample of input.npy, once to warm up and
 * `runs` times timed:
 *
 *	int8     tmrt_run, one sample a call, inputs already int8 (an MCU
 *	         gets its sensor data as integers; quantizing the inputs is
 *	         done once, before the clock starts, and is not timed)
 *	float/1  the float interpreter one sample a call (batch 1: what a
 *	         float build on the target would do)
 *	float/B  the float interpreter in batches of 100 (tmpipe's own
 *	         calibration speed; sgemm gets wide matrices)
 *
 * Prints, in the format bench/int8-run parses:
 *
 *	result int8 <name> engine=<e> best=<samples/s> median=<samples/s>
 *	memory int8 <name> arena=<bytes> activations=<bytes> float=<bytes>
 *	error int8 <name> maxabs=<max |int8 - float|> top1=<agreement %>
 *
 * where arena is the planned arena (liveness reuse), activations the sum
 * of every int8 activation tensor (no reuse), float the float
 * interpreter's buffers at batch 1. The int8 outputs are dequantized and
 * compared with the float outputs of the same samples: a fast answer is
 * worth nothing if it is the wrong one. */
#define _POSIX_C_SOURCE 200809L

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <tmpipe/tmpipe.h>
#include <tmrt/model.h>

#include "common.h"
#include "lower_priv.h"

#define FLOAT_BATCH 100

/* x (one CHW sample or a vector) quantized into q in the runtime's
 * layout: images [C,H,W] become HWC. */
static void
quantize_sample(const tm_tensor *t, const float *x, int8_t *q)
{
	size_t c = 1, hw = tm_tensor_numel(t);

	if (t->ndim == 3) {
		c = (size_t)t->shape[0];
		hw = (size_t)(t->shape[1] * t->shape[2]);
	}
	for (size_t ci = 0; ci < c; ci++)
		for (size_t p = 0; p < hw; p++) {
			long v = lround(x[ci * hw + p] / t->q.scale) +
				 t->q.zero_point;

			q[p * c + ci] = (int8_t)(v < -128 ? -128
						 : v > 127 ? 127 : v);
		}
}

static tmrt_status
int8_pass(const tmrt_model *rt, const int8_t *xq, size_t n, size_t in_numel,
	  int8_t *yq, size_t out_numel, void *arena)
{
	for (size_t s = 0; s < n; s++) {
		const int8_t *in[1] = { xq + s * in_numel };
		int8_t *out[1] = { yq + s * out_numel };
		tmrt_status st = tmrt_run(rt, in, out, arena, rt->arena_size);

		if (st)
			return st;
	}
	return TMRT_OK;
}

static size_t
argmax_f(const float *v, size_t n)
{
	size_t k = 0;

	for (size_t i = 1; i < n; i++)
		if (v[i] > v[k])
			k = i;
	return k;
}

static size_t
argmax_q(const int8_t *v, size_t n)
{
	size_t k = 0;

	for (size_t i = 1; i < n; i++)
		if (v[i] > v[k])
			k = i;
	return k;
}

static void
report(const char *name, const char *engine, double *rate, size_t runs)
{
	double med = bench_median(rate, runs);

	printf("result int8 %s engine=%s best=%.1f median=%.1f\n", name,
	       engine, rate[runs - 1], med);
}

static void
usage(FILE *f)
{
	fprintf(f, "usage: int8 [-P plugin_dir] [-r runs] [-n name] "
		   "pipeline.yaml input.npy\n");
}

int
main(int argc, char **argv)
{
	const char *plugin_dir = NULL, *name = "model";
	size_t runs = 10, n, in_numel, out_numel;
	tm_registry *reg = NULL;
	tm_model *m = NULL;
	tm_interp *it1 = NULL, *itb = NULL;
	tm_priv_lowered lw;
	const tmrt_model *rt;
	const tm_tensor *tin, *tout;
	tm_npy x = { 0 };
	float *yf = NULL;
	int8_t *xq = NULL, *yq = NULL;
	void *arena = NULL;
	double *rate = NULL, maxabs = 0.0;
	size_t agree = 0;
	tm_error err;
	char msg[2048];
	int c, rc = 1;

	memset(&lw, 0, sizeof lw);
	while ((c = getopt(argc, argv, "P:r:n:h")) != -1) {
		switch (c) {
		case 'P':
			plugin_dir = optarg;
			break;
		case 'r':
			runs = strtoul(optarg, NULL, 10);
			break;
		case 'n':
			name = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (argc - optind != 2 || runs == 0) {
		usage(stderr);
		return 2;
	}
	tm_error_clear(&err);
	m = bench_load_model(argv[optind], plugin_dir, &reg, &err);
	if (!m)
		goto fail;
	if (m->n_inputs != 1 || m->n_outputs != 1) {
		fprintf(stderr, "int8: %s: the benchmark wants one input and "
				"one output\n", argv[optind]);
		goto out;
	}
	tin = m->tensors[m->inputs[0]];
	tout = m->tensors[m->outputs[0]];
	if (tin->q.scheme != TM_QSCHEME_PER_TENSOR) {
		fprintf(stderr, "int8: %s: the model is not quantized (the "
				"pipeline needs a calibration section)\n",
			argv[optind]);
		goto out;
	}
	if (tm_priv_lower(m, 0, &lw, &err))
		goto fail;
	rt = tm_priv_blob_model(lw.blob);
	if (tm_npy_load(argv[optind + 1], &x, &err))
		goto fail;
	in_numel = tm_tensor_numel(tin);
	out_numel = tm_tensor_numel(tout);
	if (x.ndim < 1 || x.numel != (size_t)x.shape[0] * in_numel) {
		fprintf(stderr, "int8: %s: %zu values is not N samples of "
				"%zu\n", argv[optind + 1], x.numel, in_numel);
		goto out;
	}
	n = (size_t)x.shape[0];
	it1 = tm_priv_interp_new(m, 1, &err);
	itb = it1 ? tm_priv_interp_new(m, FLOAT_BATCH, &err) : NULL;
	yf = malloc(n * out_numel * sizeof *yf);
	xq = malloc(n * in_numel);
	yq = malloc(n * out_numel);
	arena = malloc(rt->arena_size ? rt->arena_size : 1);
	rate = malloc(runs * sizeof *rate);
	if (!itb || !yf || !xq || !yq || !arena || !rate) {
		if (itb)
			tm_error_set(&err, TM_ERR_NOMEM, "out of memory");
		goto fail;
	}
	for (size_t s = 0; s < n; s++)
		quantize_sample(tin, x.data + s * in_numel, xq + s * in_numel);

	/* Engines in turn, each warmed up once. */
	for (int e = 0; e < 3; e++) {
		static const char *const names[3] = { "int8", "float/1",
						      "float/100" };

		for (size_t r = 0; r <= runs; r++) {
			double t0 = bench_now();
			tmrt_status rs = TMRT_OK;
			tm_status st = TM_OK;

			if (e == 0)
				rs = int8_pass(rt, xq, n, in_numel, yq,
					       out_numel, arena);
			else
				st = bench_float_pass(e == 1 ? it1 : itb, m,
						      x.data, n,
						      e == 1 ? 1 : FLOAT_BATCH,
						      yf, &err);
			if (rs) {
				fprintf(stderr, "int8: tmrt_run: %s\n",
					tmrt_status_str(rs));
				goto out;
			}
			if (st)
				goto fail;
			if (r > 0)
				rate[r - 1] = (double)n / (bench_now() - t0);
		}
		report(name, names[e], rate, runs);
	}
	printf("memory int8 %s arena=%zu activations=%zu float=%zu\n", name,
	       lw.arena_peak, lw.arena_sum, tm_priv_interp_bytes(it1));

	/* The outputs of the last passes: int8 against float. */
	for (size_t s = 0; s < n; s++) {
		const float *f = yf + s * out_numel;
		const int8_t *q = yq + s * out_numel;

		for (size_t i = 0; i < out_numel; i++) {
			double d = fabs(tout->q.scale *
					(q[i] - tout->q.zero_point) - f[i]);

			if (d > maxabs)
				maxabs = d;
		}
		agree += argmax_f(f, out_numel) == argmax_q(q, out_numel);
	}
	printf("error int8 %s maxabs=%.4g top1=%.1f\n", name, maxabs,
	       100.0 * (double)agree / (double)n);
	rc = 0;
	goto out;
fail:
	fprintf(stderr, "int8: %s\n", tm_error_format(&err, msg, sizeof msg));
out:
	free(rate);
	free(arena);
	free(yq);
	free(xq);
	free(yf);
	tm_priv_interp_free(itb);
	tm_priv_interp_free(it1);
	tm_priv_lowered_fini(&lw);
	tm_npy_fini(&x);
	tm_model_free(m);
	tm_registry_free(reg);
	return rc;
}
