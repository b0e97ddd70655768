/* Fixture: an emitter, asked for as an observer by the tests. It also
 * declares parameters of every type so the schema code sees them. */
#include <tmpipe/plugin.h>

static tm_status
emit(const tm_model *m, const tm_params *p, tm_outputs *o, tm_error *err)
{
	(void)m;
	(void)p;
	(void)o;
	return tm_error_set(err, TM_ERR_UNSUPPORTED, "fixture emits nothing");
}

static const char *const modes[] = { "fast", "exact", NULL };
static const tm_param_spec item[] = {
	{ .name = "id", .type = TM_PARAM_STRING, .flags = TM_PARAM_REQUIRED },
	{ .name = "weight", .type = TM_PARAM_FLOAT, .def = "1.0" },
	TM_PARAM_END
};
static const tm_param_spec params[] = {
	{ .name = "flag", .type = TM_PARAM_BOOL, .def = "false",
	  .help = "a bool" },
	{ .name = "count", .type = TM_PARAM_INT, .def = "8",
	  .flags = TM_PARAM_HAS_MIN | TM_PARAM_HAS_MAX, .min = 1, .max = 16,
	  .help = "an int in [1, 16]" },
	{ .name = "ratio", .type = TM_PARAM_FLOAT, .def = "0.5",
	  .flags = TM_PARAM_HAS_MIN, .min = 0, .help = "a float >= 0" },
	{ .name = "mode", .type = TM_PARAM_STRING, .def = "fast",
	  .choices = modes, .help = "fast or exact" },
	{ .name = "file", .type = TM_PARAM_PATH, .help = "a path" },
	{ .name = "dims", .type = TM_PARAM_INT_LIST, .help = "ints" },
	{ .name = "items", .type = TM_PARAM_LIST, .fields = item,
	  .help = "records" },
	TM_PARAM_END
};

static const tm_emitter_ops ops = { .emit = emit };

TM_PLUGIN_DEFINE(TM_PLUGIN_EMITTER, "wrong_kind", "1.0",
		 "fixture: an emitter with one parameter of each type", params,
		 &ops)
