/* tmpipe bench — float forward throughput of the reference interpreter.
 *
 *	forward [-P plugin_dir] [-r runs] [-b batch] [-n name] [-o out.f32]
 *		[-p [-t tile]] pipeline.yaml input.npy
 *
 * Loads the pipeline's model through the registry and the pass manager
 * (as `tmpipe run` does; a pipeline with only a model section runs the
 * frontend and finalizes the model), then runs the float reference
 * interpreter over every sample of input.npy in batches, once to warm up
 * and `runs` times timed. Prints, in the format bench/run parses:
 *
 *	result tmpipe <name> best=<samples/s> median=<samples/s> runs=R
 *		samples=N batch=B
 *
 * With -o the outputs of the last run (N x outputs float32, native byte
 * order) go to a file, so the other engines can check they compute the
 * same thing. With -p, a profile follows: the time of each node over
 * `runs` passes, with the node's share ("profile" lines); -t runs the
 * profile a tile of samples at a time (see profile()).
 *
 * Linked against the core's convenience library: the interpreter and the
 * kernels are private to libtmpipe. */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <tmpipe/tmpipe.h>

#include "common.h"
#include "interp_priv.h"
#include "ops/ops_priv.h"

/* OpenBLAS's own calls (cblas.h declares them only in OpenBLAS's copy):
 * which kernel runs is the first thing to know about a BLAS benchmark. */
extern char *openblas_get_corename(void);
extern char *openblas_get_config(void);

/* One pass over all samples; the outputs of every batch go to out. */
static tm_status
pass(tm_interp *it, const tm_model *m, const float *x, size_t n,
     size_t batch, float *out, tm_error *err)
{
	const size_t in_numel = tm_tensor_numel(m->tensors[m->inputs[0]]);
	const size_t out_t = m->outputs[0];
	const size_t out_numel = tm_tensor_numel(m->tensors[out_t]);
	float *in = tm_priv_interp_input(it, 0);

	for (size_t s = 0; s < n; s += batch) {
		size_t b = n - s < batch ? n - s : batch;
		tm_status st;

		memcpy(in, x + s * in_numel, b * in_numel * sizeof *x);
		st = tm_priv_interp_run(it, b, err);
		if (st)
			return st;
		memcpy(out + s * out_numel, tm_priv_interp_tensor(it, out_t),
		       b * out_numel * sizeof *out);
	}
	return TM_OK;
}

/* Every node on samples [t0, t0 + nt) of the batch, with a clock around
 * each kernel. */
static tm_status
tiles(const tm_model *m, float **act, const float **in, float *scratch,
      size_t t0, size_t nt, double *secs, tm_error *err)
{
	for (size_t k = 0; k < m->n_nodes; k++) {
		const tm_node *nd = m->nodes[k];
		const size_t o = nd->outputs[0];
		tm_op_args a;
		tm_status st;
		double t;

		for (size_t i = 0; i < nd->n_inputs; i++) {
			const size_t ti = nd->inputs[i];
			const tm_tensor *tt = m->tensors[ti];

			in[i] = tt->kind == TM_TENSOR_CONST
					? tt->data
					: act[ti] + t0 * tm_tensor_numel(tt);
		}
		a.m = m;
		a.node = nd;
		a.n = nt;
		a.in = in;
		a.out = act[o] + t0 * tm_tensor_numel(m->tensors[o]);
		a.scratch = scratch;
		t = bench_now();
		st = tm_priv_op_run(&a, err);
		secs[k] += bench_now() - t;
		if (st)
			return st;
	}
	return TM_OK;
}

/* The interpreter's loop (interp.c), node by node with a clock around
 * each kernel: the same kernels on the same batches, so the shares are
 * those of the timed passes. With tile < batch, the whole graph runs on
 * tile samples at a time (into the same full-batch buffers), to see what
 * keeping a tile's activations in cache would give. */
static tm_status
profile(const tm_model *m, const float *x, size_t n, size_t batch,
	size_t tile, size_t runs, const char *name, tm_error *err)
{
	const size_t in_numel = tm_tensor_numel(m->tensors[m->inputs[0]]);
	float **act = calloc(m->n_tensors, sizeof *act);
	double *secs = calloc(m->n_nodes, sizeof *secs);
	const float **in = NULL;
	float *scratch = NULL;
	size_t max_in = 1, sc = 1;
	double total = 0;
	tm_status st = TM_OK;

	if (!act || !secs)
		goto nomem;
	for (size_t t = 0; t < m->n_tensors; t++) {
		if (m->tensors[t]->kind == TM_TENSOR_CONST)
			continue;
		act[t] = malloc(batch * tm_tensor_numel(m->tensors[t]) *
				sizeof(float));
		if (!act[t])
			goto nomem;
	}
	for (size_t k = 0; k < m->n_nodes; k++) {
		size_t s = tm_priv_op_scratch(m, m->nodes[k]);

		sc = s > sc ? s : sc;
		max_in = m->nodes[k]->n_inputs > max_in ? m->nodes[k]->n_inputs
							: max_in;
	}
	in = calloc(max_in, sizeof *in);
	scratch = malloc(sc * sizeof *scratch);
	if (!in || !scratch)
		goto nomem;
	tm_priv_blas_init();
	for (size_t r = 0; r < runs; r++) {
		for (size_t s = 0; s < n; s += batch) {
			size_t b = n - s < batch ? n - s : batch;

			memcpy(act[m->inputs[0]], x + s * in_numel,
			       b * in_numel * sizeof *x);
			for (size_t t0 = 0; t0 < b; t0 += tile) {
				size_t nt = b - t0 < tile ? b - t0 : tile;

				st = tiles(m, act, in, scratch, t0, nt, secs,
					   err);
				if (st)
					goto out;
			}
		}
	}
	for (size_t k = 0; k < m->n_nodes; k++)
		total += secs[k];
	for (size_t k = 0; k < m->n_nodes; k++)
		printf("profile tmpipe %s node=%s op=%s ms/pass=%.3f "
		       "share=%.1f%%\n", name, m->nodes[k]->name,
		       tm_op_name(m->nodes[k]->op), secs[k] * 1e3 / (double)runs,
		       100.0 * secs[k] / total);
	printf("profile tmpipe %s total ms/pass=%.3f samples/s=%.1f tile=%zu\n",
	       name, total * 1e3 / (double)runs, (double)(n * runs) / total,
	       tile);
	goto out;
nomem:
	st = tm_error_set(err, TM_ERR_NOMEM, "profile: out of memory");
out:
	for (size_t t = 0; act && t < m->n_tensors; t++)
		free(act[t]);
	free(act);
	free(secs);
	free(in);
	free(scratch);
	return st;
}

static void
usage(FILE *f)
{
	fprintf(f, "usage: forward [-P plugin_dir] [-r runs] [-b batch] "
		   "[-n name] [-o out.f32] [-p [-t tile]] pipeline.yaml "
		   "input.npy\n");
}

int
main(int argc, char **argv)
{
	const char *plugin_dir = NULL, *name = "model", *out_path = NULL;
	size_t runs = 10, batch = 100, tile = 0, n, in_numel, out_numel;
	tm_registry *reg = NULL;
	tm_model *m = NULL;
	tm_interp *it = NULL;
	tm_npy x = { 0 };
	float *out = NULL;
	double *rate = NULL, med;
	tm_error err;
	char msg[2048];
	int c, rc = 1, prof = 0;

	while ((c = getopt(argc, argv, "P:r:b:n:o:pt:h")) != -1) {
		switch (c) {
		case 'P':
			plugin_dir = optarg;
			break;
		case 'r':
			runs = strtoul(optarg, NULL, 10);
			break;
		case 'b':
			batch = strtoul(optarg, NULL, 10);
			break;
		case 'n':
			name = optarg;
			break;
		case 'o':
			out_path = optarg;
			break;
		case 'p':
			prof = 1;
			break;
		case 't':
			tile = strtoul(optarg, NULL, 10);
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (argc - optind != 2 || runs == 0 || batch == 0) {
		usage(stderr);
		return 2;
	}
	tm_error_clear(&err);
	m = bench_load_model(argv[optind], plugin_dir, &reg, &err);
	if (!m)
		goto fail;
	if (m->n_inputs != 1 || m->n_outputs != 1) {
		fprintf(stderr, "forward: %s: %zu inputs, %zu outputs; the "
				"benchmark wants one of each\n",
			argv[optind], m->n_inputs, m->n_outputs);
		goto out;
	}
	if (tm_npy_load(argv[optind + 1], &x, &err))
		goto fail;
	in_numel = tm_tensor_numel(m->tensors[m->inputs[0]]);
	out_numel = tm_tensor_numel(m->tensors[m->outputs[0]]);
	if (x.ndim < 1 || x.numel != (size_t)x.shape[0] * in_numel) {
		fprintf(stderr, "forward: %s: %zu values is not N samples of "
				"%zu\n", argv[optind + 1], x.numel, in_numel);
		goto out;
	}
	n = (size_t)x.shape[0];
	it = tm_priv_interp_new(m, batch, &err);
	out = malloc(n * out_numel * sizeof *out);
	rate = malloc(runs * sizeof *rate);
	if (!it || !out || !rate) {
		if (it)
			tm_error_set(&err, TM_ERR_NOMEM, "out of memory");
		goto fail;
	}
	printf("info tmpipe openblas %s core=%s\n", openblas_get_config(),
	       openblas_get_corename());
	if (pass(it, m, x.data, n, batch, out, &err))	/* warm-up */
		goto fail;
	for (size_t r = 0; r < runs; r++) {
		double t0 = bench_now();

		if (pass(it, m, x.data, n, batch, out, &err))
			goto fail;
		rate[r] = (double)n / (bench_now() - t0);
	}
	med = bench_median(rate, runs);
	printf("result tmpipe %s best=%.1f median=%.1f runs=%zu samples=%zu "
	       "batch=%zu\n", name, rate[runs - 1], med, runs, n, batch);
	if (prof && profile(m, x.data, n, batch, tile ? tile : batch, runs,
			    name, &err))
		goto fail;
	if (out_path) {
		FILE *f = fopen(out_path, "wb");

		if (!f || fwrite(out, sizeof *out, n * out_numel, f) !=
				  n * out_numel) {
			perror(out_path);
			if (f)
				fclose(f);
			goto out;
		}
		if (fclose(f)) {
			perror(out_path);
			goto out;
		}
	}
	rc = 0;
	goto out;
fail:
	fprintf(stderr, "forward: %s\n", tm_error_format(&err, msg,
							  sizeof msg));
out:
	free(rate);
	free(out);
	tm_priv_interp_free(it);
	tm_npy_fini(&x);
	tm_model_free(m);
	tm_registry_free(reg);
	return rc;
}
