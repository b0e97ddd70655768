/* ONNX backend conformance: every case of ONNX's own node tests
 * (libonnx-testdata: data/node/<case>/model.onnx with
 * test_data_set_N/input_K.pb and output_K.pb) whose operators the onnx
 * frontend supports is imported with the frontend's code, run by the
 * float reference interpreter and compared with the expected outputs.
 *
 * Test cases pass weights as graph inputs; the driver binds an input as a
 * constant unless a node reads it as data (input 0, a Concat operand, or
 * an Add operand shaped like the other one). Cases that use a supported
 * operator in a way tmpipe cannot express (batch semantics, integer data,
 * 1-D or 3-D windows, ...) are skipped, each with the importer's reason.
 *
 * Tolerance: |got - want| <= 1e-6 + 1e-5 |want|. The interpreter runs in
 * float32 like the reference (numpy float32); sums come in another order
 * (BLAS), which moves a float32 result by a few ulps (1e-7 relative) per
 * term, so 1e-5 relative holds with room while a wrong padding, axis or
 * attribute shows as errors of order 1. The absolute term covers outputs
 * near 0 that come from cancellation.
 *
 * Usage: onnx_conformance [DIR] (default $ONNX_TESTDATA, else
 * /usr/share/libonnx-testdata/data/node). Exit 0 when every runnable case
 * passes, 1 when one fails, 77 (skip) when the test data is missing. */
#include "config.h"

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "interp_priv.h"
#include "import.h"

#define DIM_VALUE ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE
#define RTOL 1e-5
#define ATOL 1e-6
#define MAX_OPS 64
#define MAX_IO 16

typedef struct opstat {
	char name[64];
	unsigned passed, failed, skipped;
} opstat;

static opstat stats[MAX_OPS];
static size_t n_stats;

static opstat *
stat_for(const char *op)
{
	for (size_t k = 0; k < n_stats; k++)
		if (strcmp(stats[k].name, op) == 0)
			return &stats[k];
	if (n_stats == MAX_OPS)
		return &stats[MAX_OPS - 1];
	snprintf(stats[n_stats].name, sizeof stats[n_stats].name, "%s", op);
	return &stats[n_stats++];
}

static int
is_dir(const char *p)
{
	struct stat sb;

	return stat(p, &sb) == 0 && S_ISDIR(sb.st_mode);
}

static int
is_file(const char *p)
{
	struct stat sb;

	return stat(p, &sb) == 0 && S_ISREG(sb.st_mode);
}

/* Rank and dim 0 of a graph value's declared shape (-1 when unknown). */
static void
declared(const Onnx__ValueInfoProto *vi, int *rank, int64_t *d0)
{
	const Onnx__TensorShapeProto *sp = NULL;

	*rank = -1;
	*d0 = -1;
	if (vi->type && vi->type->value_case ==
			       ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE &&
	    vi->type->tensor_type)
		sp = vi->type->tensor_type->shape;
	if (!sp)
		return;
	*rank = (int)sp->n_dim;
	if (sp->n_dim && sp->dim[0]->value_case == DIM_VALUE)
		*d0 = sp->dim[0]->dim_value;
}

static const Onnx__ValueInfoProto *
graph_input(const Onnx__GraphProto *g, const char *name)
{
	for (size_t k = 0; k < g->n_input; k++)
		if (g->input[k]->name && strcmp(g->input[k]->name, name) == 0)
			return g->input[k];
	return NULL;
}

/* Whether graph input name is data (an activation) rather than a weight. */
static int
is_data(const Onnx__GraphProto *g, const char *name)
{
	for (size_t i = 0; i < g->n_node; i++) {
		const Onnx__NodeProto *n = g->node[i];

		for (size_t k = 0; k < n->n_input; k++) {
			if (!n->input[k] || strcmp(n->input[k], name))
				continue;
			if (k == 0 || strcmp(n->op_type, "Concat") == 0)
				return 1;
			if (strcmp(n->op_type, "Add") == 0 && k == 1) {
				const Onnx__ValueInfoProto *a =
					graph_input(g, n->input[0]);
				const Onnx__ValueInfoProto *b =
					graph_input(g, name);
				int ra, rb;
				int64_t da, db;

				if (!a || !b)
					return 0;
				declared(a, &ra, &da);
				declared(b, &rb, &db);
				return ra == rb && da == db && ra > 0;
			}
		}
	}
	return 0;
}

typedef struct dataset {
	Onnx__TensorProto *in[MAX_IO], *out[MAX_IO];
	size_t n_in, n_out;
} dataset;

static void
dataset_free(dataset *d)
{
	for (size_t k = 0; k < d->n_in; k++)
		protobuf_c_message_free_unpacked(&d->in[k]->base, NULL);
	for (size_t k = 0; k < d->n_out; k++)
		protobuf_c_message_free_unpacked(&d->out[k]->base, NULL);
	memset(d, 0, sizeof *d);
}

static tm_status
dataset_read(const char *dir, dataset *d, tm_error *err)
{
	char p[4096];
	tm_status st = TM_OK;

	memset(d, 0, sizeof *d);
	for (size_t k = 0; k < MAX_IO && !st; k++) {
		snprintf(p, sizeof p, "%s/input_%zu.pb", dir, k);
		if (!is_file(p))
			break;
		st = onnx_read_tensor(p, &d->in[k], err);
		if (!st)
			d->n_in++;
	}
	for (size_t k = 0; k < MAX_IO && !st; k++) {
		snprintf(p, sizeof p, "%s/output_%zu.pb", dir, k);
		if (!is_file(p))
			break;
		st = onnx_read_tensor(p, &d->out[k], err);
		if (!st)
			d->n_out++;
	}
	return st;
}

enum { PASS, FAIL, SKIP };

/* Runs one data set; fills why on FAIL and SKIP. */
static int
run_set(const char *model, const Onnx__GraphProto *g, const dataset *d,
	char *why, size_t size)
{
	const char *bind_names[MAX_IO], *data_names[MAX_IO];
	const Onnx__TensorProto *bind_vals[MAX_IO], *data_vals[MAX_IO];
	size_t n_bind = 0, n_data = 0, k_in = 0;
	onnx_opts o;
	onnx_result r;
	tm_model *m = tm_model_new();
	tm_interp *it = NULL;
	tm_error err;
	int64_t batch = -1;
	int res = FAIL;

	tm_error_clear(&err);
	memset(&o, 0, sizeof o);
	memset(&r, 0, sizeof r);
	if (!m) {
		snprintf(why, size, "out of memory");
		return FAIL;
	}
	for (size_t k = 0; k < g->n_input; k++) {
		const char *name = g->input[k]->name;
		int init = 0;

		for (size_t j = 0; j < g->n_initializer; j++)
			init |= strcmp(g->initializer[j]->name, name) == 0;
		if (init)
			continue;
		if (k_in >= d->n_in) {
			snprintf(why, size, "no data for input '%s'", name);
			goto out;
		}
		if (is_data(g, name)) {
			data_names[n_data] = name;
			data_vals[n_data++] = d->in[k_in++];
		} else {
			bind_names[n_bind] = name;
			bind_vals[n_bind++] = d->in[k_in++];
		}
	}
	o.n_bind = n_bind;
	o.bind_names = bind_names;
	o.bind_values = bind_vals;
	o.keep_scales = 1;
	if (onnx_import(model, &o, m, &r, &err)) {
		snprintf(why, size, "%s", err.msg);
		res = err.code == TM_ERR_UNSUPPORTED ? SKIP : FAIL;
		goto out;
	}
	if (n_data != m->n_inputs) {
		snprintf(why, size, "%zu data inputs, the model has %zu",
			 n_data, m->n_inputs);
		goto out;
	}
	for (size_t k = 0; k < n_data; k++) {
		const Onnx__TensorProto *tp = data_vals[k];

		if (tp->data_type != ONNX_FLOAT) {
			snprintf(why, size, "input '%s' is %s data",
				 data_names[k], onnx_dtype_name(tp->data_type));
			res = SKIP;
			goto out;
		}
		if (tp->n_dims < 1) {
			snprintf(why, size, "input '%s' is a scalar",
				 data_names[k]);
			res = SKIP;
			goto out;
		}
		if (batch >= 0 && tp->dims[0] != batch) {
			snprintf(why, size, "inputs of different batch sizes");
			res = SKIP;
			goto out;
		}
		batch = tp->dims[0];
	}
	if (batch < 1) {
		snprintf(why, size, "empty batch");
		res = SKIP;
		goto out;
	}
	it = tm_priv_interp_new(m, (size_t)batch, &err);
	if (!it) {
		snprintf(why, size, "interpreter: %s", err.msg);
		goto out;
	}
	for (size_t k = 0; k < n_data; k++) {
		size_t t = tm_model_tensor_index(m, data_names[k]), i;
		onnx_tensor v;
		size_t per;

		for (i = 0; i < m->n_inputs && m->inputs[i] != t; i++)
			;
		if (i == m->n_inputs) {
			snprintf(why, size, "no model input '%s'",
				 data_names[k]);
			goto out;
		}
		per = tm_tensor_numel(m->tensors[t]);
		if (onnx_tensor_decode(data_vals[k], ".", data_names[k], &v,
				       &err)) {
			snprintf(why, size, "%s", err.msg);
			goto out;
		}
		if (v.n != per * (size_t)batch) {
			snprintf(why, size, "input '%s': %zu values, the model "
				 "takes %zu x %zu", data_names[k], v.n,
				 (size_t)batch, per);
			onnx_tensor_fini(&v);
			goto out;
		}
		memcpy(tm_priv_interp_input(it, i), v.f, v.n * sizeof *v.f);
		onnx_tensor_fini(&v);
	}
	if (tm_priv_interp_run(it, (size_t)batch, &err)) {
		snprintf(why, size, "run: %s", err.msg);
		goto out;
	}
	if (d->n_out != r.n_outputs) {
		snprintf(why, size, "%zu expected outputs, %zu graph outputs",
			 d->n_out, r.n_outputs);
		goto out;
	}
	for (size_t k = 0; k < d->n_out; k++) {
		size_t t = tm_model_tensor_index(m, r.output_tm[k]);
		const float *got = tm_priv_interp_tensor(it, t);
		size_t per = tm_tensor_numel(m->tensors[t]);
		onnx_tensor want;
		double worst = 0.0;
		size_t at = 0;

		if (onnx_tensor_decode(d->out[k], ".", "expected output",
				       &want, &err)) {
			snprintf(why, size, "%s", err.msg);
			res = err.code == TM_ERR_UNSUPPORTED ? SKIP : FAIL;
			goto out;
		}
		if (!want.f) {
			snprintf(why, size, "output '%s' is %s data",
				 r.output_onnx[k],
				 onnx_dtype_name(want.dtype));
			onnx_tensor_fini(&want);
			res = SKIP;
			goto out;
		}
		if (want.n != per * (size_t)batch) {
			snprintf(why, size, "output '%s': %zu values expected, "
				 "got %zu x %zu", r.output_onnx[k], want.n,
				 (size_t)batch, per);
			onnx_tensor_fini(&want);
			goto out;
		}
		for (size_t i = 0; i < want.n; i++) {
			double e = fabs((double)got[i] - want.f[i]);
			double lim = ATOL + RTOL * fabs((double)want.f[i]);

			if (!(e <= lim) && (isnan(e) || e - lim > worst)) {
				worst = isnan(e) ? INFINITY : e - lim;
				at = i;
			}
		}
		if (worst > 0.0) {
			snprintf(why, size, "output '%s'[%zu] = %.9g, expected "
				 "%.9g", r.output_onnx[k], at, (double)got[at],
				 (double)want.f[at]);
			onnx_tensor_fini(&want);
			goto out;
		}
		onnx_tensor_fini(&want);
	}
	res = PASS;
out:
	tm_priv_interp_free(it);
	onnx_result_fini(&r);
	tm_model_free(m);
	return res;
}

/* One case: every data set must pass. */
static int
run_case(const char *dir, const char *name, char *why, size_t size,
	 Onnx__ModelProto **mp_out)
{
	char model[4096], p[4096];
	Onnx__ModelProto *mp;
	tm_error err;
	int res = PASS, any = 0;

	tm_error_clear(&err);
	snprintf(model, sizeof model, "%s/%s/model.onnx", dir, name);
	*mp_out = NULL;
	if (onnx_read_model(model, &mp, &err)) {
		snprintf(why, size, "%s", err.msg);
		return FAIL;
	}
	*mp_out = mp;
	for (int s = 0; s < 100 && res == PASS; s++) {
		dataset d;

		snprintf(p, sizeof p, "%s/%s/test_data_set_%d", dir, name, s);
		if (!is_dir(p))
			break;
		any = 1;
		if (dataset_read(p, &d, &err)) {
			snprintf(why, size, "%s", err.msg);
			dataset_free(&d);
			return FAIL;
		}
		res = run_set(model, mp->graph, &d, why, size);
		dataset_free(&d);
	}
	if (!any) {
		snprintf(why, size, "no test data set");
		return SKIP;
	}
	return res;
}

/* The case's op types, distinct; 0 when one is not supported. */
static size_t
case_ops(const Onnx__GraphProto *g, const char **ops, size_t max)
{
	size_t n = 0;

	for (size_t i = 0; i < g->n_node; i++) {
		const Onnx__NodeProto *nd = g->node[i];
		int seen = 0;

		if (!onnx_op_supported(nd->op_type, nd->domain))
			return 0;
		for (size_t k = 0; k < n; k++)
			seen |= strcmp(ops[k], nd->op_type) == 0;
		if (!seen && n < max)
			ops[n++] = nd->op_type;
	}
	return n;
}

static int
cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int
main(int argc, char **argv)
{
	const char *dir = argc > 1 ? argv[1] : getenv("ONNX_TESTDATA");
	unsigned passed = 0, failed = 0, skipped = 0;
	char **names = NULL;
	size_t n = 0, cap = 0;
	struct dirent *de;
	DIR *dp;

	if (!dir)
		dir = "/usr/share/libonnx-testdata/data/node";
	dp = opendir(dir);
	if (!dp) {
		printf("SKIP: no ONNX backend test data at %s (install the "
		       "Debian package libonnx-testdata)\n", dir);
		return 77;
	}
	while ((de = readdir(dp))) {
		if (de->d_name[0] == '.')
			continue;
		if (n == cap) {
			char **v = realloc(names, (cap = cap ? 2 * cap : 256) *
						   sizeof *v);

			if (!v)
				return 1;
			names = v;
		}
		if (!(names[n] = strdup(de->d_name)))
			return 1;
		n++;
	}
	closedir(dp);
	qsort(names, n, sizeof *names, cmp_names);

	for (size_t c = 0; c < n; c++) {
		char why[TM_ERROR_MSG_MAX + 64] = "", model[4096];
		const char *ops[16];
		size_t nops;
		Onnx__ModelProto *mp = NULL;
		tm_error err;
		int res;

		tm_error_clear(&err);
		snprintf(model, sizeof model, "%s/%s/model.onnx", dir,
			 names[c]);
		if (!is_file(model) || onnx_read_model(model, &mp, &err) ||
		    !mp->graph)
			goto next;
		nops = case_ops(mp->graph, ops, 16);
		if (!nops)
			goto next;
		protobuf_c_message_free_unpacked(&mp->base, NULL);
		mp = NULL;
		res = run_case(dir, names[c], why, sizeof why, &mp);
		if (!mp)
			goto next;
		nops = case_ops(mp->graph, ops, 16);
		for (size_t k = 0; k < nops; k++) {
			opstat *s = stat_for(ops[k]);

			s->passed += res == PASS;
			s->failed += res == FAIL;
			s->skipped += res == SKIP;
		}
		passed += res == PASS;
		failed += res == FAIL;
		skipped += res == SKIP;
		if (res == FAIL)
			printf("FAIL %s: %s\n", names[c], why);
		else if (res == SKIP)
			printf("skip %s: %s\n", names[c], why);
next:
		if (mp)
			protobuf_c_message_free_unpacked(&mp->base, NULL);
		free(names[c]);
	}
	free(names);
	printf("\n");
	for (size_t k = 0; k < n_stats; k++)
		printf("%s: %u/%u passed (%u skipped)\n", stats[k].name,
		       stats[k].passed, stats[k].passed + stats[k].failed,
		       stats[k].skipped);
	printf("total: %u cases: %u passed, %u failed, %u skipped "
	       "(rtol %g, atol %g)\n", passed + failed + skipped, passed,
	       failed, skipped, RTOL, ATOL);
	/* The line every test program ends with (.ci/run adds them up). */
	printf("%u passed, %u failed\n", passed, failed);
	return failed ? 1 : 0;
}
