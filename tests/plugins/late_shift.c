/* Fixture: a transform that needs data and runs after calibration; it
 * streams the model's first input once (to exercise tm_transform_ctx) and
 * adds 1 to the bias of the first dense layer, without preserving the
 * ranges: the core must recalibrate. */
#include <stdio.h>

#include <tmpipe/log.h>
#include <tmpipe/plugin.h>

static tm_status
count(void *user, size_t tensor, const float *values, size_t n,
      tm_error *err)
{
	(void)tensor;
	(void)values;
	(void)err;
	*(size_t *)user += n;
	return TM_OK;
}

static tm_status
shift_run(tm_model *m, const tm_params *params, const tm_transform_ctx *ctx,
	  unsigned *preserved, tm_error *err)
{
	size_t samples = 0;
	tm_status st;

	(void)params;
	*preserved = TM_PRESERVE_NONE;
	st = tm_transform_ctx_stream(ctx, m, m->inputs, 1, count, &samples,
				     err);
	if (st)
		return st;
	tm_log(TM_LOG_NOTE, "late_shift", "streamed %zu samples", samples);
	for (size_t k = 0; k < m->n_nodes; k++) {
		const tm_node *n = m->nodes[k];
		tm_tensor *b;

		if (n->op != TM_OP_DENSE || n->n_inputs < 3)
			continue;
		b = m->tensors[n->inputs[2]];
		for (size_t i = 0; i < tm_tensor_numel(b); i++)
			b->data[i] += 1.0f;
		break;
	}
	return TM_OK;
}

static const tm_transform_ops ops = {
	.needs = TM_TRANSFORM_NEEDS_DATA,
	.run_ctx = shift_run,
};

TM_PLUGIN_DEFINE(TM_PLUGIN_TRANSFORM, "late_shift", "1.0",
		 "test fixture: shifts a bias after calibration", NULL, &ops)
