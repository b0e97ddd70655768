/* tmpipe tests — pipeline files (core/pipeline.c): sections, plugin
 * names, parameters, --set overrides and the exact text of every error.
 *
 * The registry holds copies of the build tree's npy, minmax and c_header
 * ($TMPIPE_PLUGIN_PATH) and of the fixtures twin (a second observer) and
 * bad_abi ($TMPIPE_FIXTURE_DIR), so the "available" lists do not change
 * when plugins are added to the tree. Pipelines are written to
 * <tmpdir>/pl/; positions in the expected messages are counted by hand. */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <CUnit/CUnit.h>

#include "params_priv.h"
#include "pipeline_priv.h"
#include "runner.h"

static tm_registry *reg;
static char plugin_dir[4096];	/* <tmpdir>/plugins */
static char pl_dir[4096];	/* <tmpdir>/pl */
static char xor_dir[PATH_MAX];	/* $srcdir/examples/xor, absolute */

/* The model section most cases share: lines 2 to 6 after "tmpipe: 1". */
#define HEAD                                                                 \
	"tmpipe: 1\n"                                                        \
	"model:\n"                                                           \
	"  frontend: npy\n"                                                  \
	"  inputs: {input: [2]}\n"                                           \
	"  layers:\n"                                                        \
	"    - {name: fc1, op: dense, input: input, weight: w.npy}\n"

/* "<tmpdir>/pl/name" in buf, with text written there. */
static const char *
write_pipeline(char *buf, size_t size, const char *name, const char *text)
{
	snprintf(buf, size, "%s/%s", pl_dir, name);
	tm_test_write_file(buf, text);
	return buf;
}

static tm_status
load(const char *name, const char *text, const char *const *overrides,
     tm_pipeline **pl, tm_error *err)
{
	char path[4096];

	write_pipeline(path, sizeof path, name, text);
	tm_error_clear(err);
	return tm_pipeline_load(path, reg, overrides, pl, err);
}

/* Loading text must fail with code and, formatted, exactly
 * "<the pipeline's path><want>" (want starts with ":line:col: "), or
 * exactly want when it does not start with ':'. */
#define EXPECT_ERR(text, ov, code, want)                                     \
	expect_err((text), (ov), (code), (want), __FILE__, __LINE__)

static void
expect_err(const char *text, const char *const *ov, tm_status code,
	   const char *want, const char *file, int line)
{
	char path[4096], full[8192], buf[8192];
	tm_pipeline *pl = (tm_pipeline *)1;
	tm_error err;
	tm_status st;

	write_pipeline(path, sizeof path, "bad.yaml", text);
	tm_error_clear(&err);
	st = tm_pipeline_load(path, reg, ov, &pl, &err);
	if (st != code)
		fprintf(stderr, "\n%s:%d: status %d, want %d\n", file, line,
			(int)st, (int)code);
	CU_ASSERT_EQUAL(st, code);
	CU_ASSERT_EQUAL(err.code, code);
	CU_ASSERT_PTR_NULL(pl);
	if (want[0] == ':')
		snprintf(full, sizeof full, "%s%s", path, want);
	else
		snprintf(full, sizeof full, "%s", want);
	tm_test_check_str(tm_error_format(&err, buf, sizeof buf), full, file, line);
	if (!st)
		tm_pipeline_free(pl);
}

static const char *
plugin_name(const tm_stage *s)
{
	return s && s->plugin && s->plugin->desc ? s->plugin->desc->name
						 : "(none)";
}

/* --- valid pipelines ---------------------------------------------------- */

static void
test_valid(void)
{
	char text[4096], want[8192];
	const tm_params *layer;
	tm_pipeline *pl = NULL;
	tm_error err;

	snprintf(text, sizeof text,
		 "tmpipe: 1\n"
		 "model:\n"
		 "  frontend: npy\n"
		 "  dir: %s/weights\n"
		 "  inputs: {input: [2]}\n"
		 "  layers:\n"
		 "    - {name: fc1, op: dense, input: input, "
		 "weight: fc1.weight.npy, bias: fc1.bias.npy}\n"
		 "    - {name: h1, op: relu, input: fc1}\n"
		 "    - {name: fc2, op: dense, input: h1, "
		 "weight: fc2.weight.npy, bias: fc2.bias.npy}\n"
		 "    - {name: out, op: sigmoid, input: fc2}\n"
		 "calibration:\n"
		 "  data: calib.npy\n"
		 "emit:\n"
		 "  - c_header: {path: out/xor_model.h, prefix: xor}\n"
		 "  - c_header:\n"
		 "      path: /abs/second.h\n",
		 xor_dir);
	CU_ASSERT_EQUAL(load("valid.yaml", text, NULL, &pl, &err), TM_OK);
	CU_ASSERT_EQUAL(err.code, TM_OK);
	CU_ASSERT_PTR_NOT_NULL(pl);
	if (!pl)
		return;
	snprintf(want, sizeof want, "%s/valid.yaml", pl_dir);
	CHECK_STR(pl->file, want);
	CHECK_STR(pl->basedir, pl_dir);

	/* model: the frontend and its parameters (absolute dir stays). */
	CHECK_STR(plugin_name(&pl->frontend), "npy");
	CHECK_STR(pl->frontend.label, "frontend 'npy'");
	CU_ASSERT_EQUAL(pl->frontend.line, 3);
	CU_ASSERT_EQUAL(pl->frontend.col, 13);
	snprintf(want, sizeof want, "%s/weights", xor_dir);
	CHECK_STR(tm_params_get_string(pl->frontend.params, "dir"), want);
	CU_ASSERT_EQUAL(tm_params_list_len(pl->frontend.params, "layers"), 4);
	layer = tm_params_item(pl->frontend.params, "layers", 2);
	CHECK_STR(tm_params_get_string(layer, "name"), "fc2");
	CHECK_STR(tm_params_get_string(layer, "weight"), "fc2.weight.npy");
	CHECK_STR(tm_params_key(pl->frontend.params, "inputs", 0), "input");
	CU_ASSERT_EQUAL(pl->n_transforms, 0);

	/* calibration: data from the pipeline's folder, defaults. */
	CU_ASSERT_EQUAL(pl->has_calibration, 1);
	snprintf(want, sizeof want, "%s/calib.npy", pl_dir);
	CHECK_STR(pl->calib_data, want);
	CU_ASSERT_EQUAL(pl->calib_line, 12);
	CU_ASSERT_EQUAL(pl->calib_col, 9);
	CHECK_STR(pl->calib_file, pl->file);
	/* One file: one source, for the model's only input. */
	CU_ASSERT_EQUAL(pl->n_calib_sources, 1);
	if (pl->n_calib_sources == 1) {
		CU_ASSERT_PTR_NULL(pl->calib_sources[0].input);
		CHECK_STR(pl->calib_sources[0].path, want);
	}
	CU_ASSERT_EQUAL(pl->batch, 64);
	CU_ASSERT_EQUAL(pl->threads, 1);
	CHECK_STR(plugin_name(&pl->observer), "minmax");
	CHECK_STR(pl->observer.label, "observer 'minmax'");
	CU_ASSERT_EQUAL(pl->n_rules, 0);

	/* emit: two stages of one plugin, each with its parameters. */
	CU_ASSERT_EQUAL(pl->n_emitters, 2);
	if (pl->n_emitters == 2) {
		const tm_params *p0 = pl->emitters[0].params;
		const tm_params *p1 = pl->emitters[1].params;

		CHECK_STR(plugin_name(&pl->emitters[0]), "c_header");
		CHECK_STR(pl->emitters[0].label, "emitter 'c_header'");
		CU_ASSERT_EQUAL(pl->emitters[0].line, 14);
		CU_ASSERT_EQUAL(pl->emitters[0].col, 5);
		snprintf(want, sizeof want, "%s/out/xor_model.h", pl_dir);
		CHECK_STR(tm_params_get_string(p0, "path"), want);
		CHECK_STR(tm_params_get_string(p0, "prefix"), "xor");
		CU_ASSERT_EQUAL(tm_params_is_set(p0, "prefix"), 1);
		CU_ASSERT_EQUAL(pl->emitters[1].line, 15);
		CHECK_STR(tm_params_get_string(p1, "path"), "/abs/second.h");
		CHECK_STR(tm_params_get_string(p1, "prefix"), "model");
		CU_ASSERT_EQUAL(tm_params_is_set(p1, "prefix"), 0);
	}
	tm_pipeline_free(pl);
}

/* The example the manual points at loads as it is. */
static void
test_example_xor(void)
{
	char path[PATH_MAX + 64], want[PATH_MAX + 64];
	tm_pipeline *pl = NULL;
	tm_error err;

	snprintf(path, sizeof path, "%s/pipeline.yaml", xor_dir);
	tm_error_clear(&err);
	CU_ASSERT_EQUAL(tm_pipeline_load(path, reg, NULL, &pl, &err), TM_OK);
	if (err.code) {
		char buf[4096];

		fprintf(stderr, "\n%s\n",
			tm_error_format(&err, buf, sizeof buf));
	}
	if (!pl)
		return;
	snprintf(want, sizeof want, "%s/calib.npy", xor_dir);
	CHECK_STR(pl->calib_data, want);
	snprintf(want, sizeof want, "%s/weights", xor_dir);
	CHECK_STR(tm_params_get_string(pl->frontend.params, "dir"), want);
	CU_ASSERT_EQUAL(pl->n_emitters, 1);
	if (pl->n_emitters == 1) {
		snprintf(want, sizeof want, "%s/out/xor_model.h", xor_dir);
		CHECK_STR(tm_params_get_string(pl->emitters[0].params, "path"),
			  want);
		CHECK_STR(tm_params_get_string(pl->emitters[0].params,
					       "prefix"),
			  "xor");
	}
	tm_pipeline_free(pl);
}

static void
test_minimal(void)
{
	tm_pipeline *pl = NULL;
	tm_error err;

	/* No calibration and no emit: read, check, nothing written. */
	CU_ASSERT_EQUAL(load("min.yaml", HEAD, NULL, &pl, &err), TM_OK);
	if (!pl)
		return;
	CU_ASSERT_EQUAL(pl->has_calibration, 0);
	CU_ASSERT_PTR_NULL(pl->calib_data);
	CU_ASSERT_EQUAL(pl->n_emitters, 0);
	/* The npy default dir (".") is the pipeline's folder. */
	{
		const char *dir = tm_params_get_string(pl->frontend.params,
						       "dir");
		char got[PATH_MAX], want[PATH_MAX];

		CU_ASSERT_PTR_NOT_NULL(dir);
		CU_ASSERT(dir && dir[0] == '/');
		CU_ASSERT(dir && realpath(dir, got) && realpath(pl_dir, want) &&
			  strcmp(got, want) == 0);
	}
	tm_pipeline_free(pl);

	/* Empty stage lists mean no stages. */
	CU_ASSERT_EQUAL(load("min2.yaml",
			     HEAD "transforms: []\n"
				  "calibration: {data: c.npy}\n"
				  "emit:\n",
			     NULL, &pl, &err),
			TM_OK);
	if (!pl)
		return;
	CU_ASSERT_EQUAL(pl->n_transforms, 0);
	CU_ASSERT_EQUAL(pl->n_emitters, 0);
	tm_pipeline_free(pl);
}

static void
test_rules(void)
{
	static const char text[] = HEAD
		"calibration:\n"		/* 7 */
		"  data: /data/calib.npy\n"	/* 8 */
		"  batch: 8\n"			/* 9 */
		"  observer: twin\n"		/* 10 */
		"  tensors:\n"			/* 11 */
		"    fc*: {observer: minmax}\n" /* 12 */
		"    fc1: {observer: twin}\n"	/* 13 */
		"    h?: {observer: {name: minmax}}\n" /* 14 */
		"    h*: {observer: twin}\n"	/* 15 */
		"    o*: {}\n";			/* 16 */
	tm_pipeline *pl = NULL;
	tm_error err;

	CU_ASSERT_EQUAL(load("rules.yaml", text, NULL, &pl, &err), TM_OK);
	if (err.code) {
		char buf[4096];

		fprintf(stderr, "\n%s\n",
			tm_error_format(&err, buf, sizeof buf));
	}
	if (!pl)
		return;
	CHECK_STR(pl->calib_data, "/data/calib.npy");
	CU_ASSERT_EQUAL(pl->batch, 8);
	CHECK_STR(plugin_name(&pl->observer), "twin");
	CU_ASSERT_EQUAL(pl->observer.line, 10);
	CU_ASSERT_EQUAL(pl->observer.col, 13);
	CU_ASSERT_EQUAL(pl->n_rules, 5);
	if (pl->n_rules != 5) {
		tm_pipeline_free(pl);
		return;
	}
	CHECK_STR(pl->rules[0].pattern, "fc*");
	CU_ASSERT_EQUAL(pl->rules[0].line, 12);
	CU_ASSERT_EQUAL(pl->rules[0].col, 5);
	CHECK_STR(plugin_name(&pl->rules[0].observer), "minmax");
	CHECK_STR(pl->rules[1].pattern, "fc1");
	CHECK_STR(plugin_name(&pl->rules[1].observer), "twin");
	CU_ASSERT_EQUAL(pl->rules[1].observer.line, 13);
	CU_ASSERT_EQUAL(pl->rules[1].observer.col, 21);
	CHECK_STR(pl->rules[2].pattern, "h?");
	CHECK_STR(plugin_name(&pl->rules[2].observer), "minmax");
	/* The name inside {name: ...} is where the observer is named. */
	CU_ASSERT_EQUAL(pl->rules[2].observer.line, 14);
	CU_ASSERT_EQUAL(pl->rules[2].observer.col, 27);
	CHECK_STR(pl->rules[3].pattern, "h*");
	/* A rule without an observer tunes the section's. */
	CHECK_STR(pl->rules[4].pattern, "o*");
	CHECK_STR(plugin_name(&pl->rules[4].observer), "twin");
	CHECK_STR(pl->rules[4].file, pl->file);

	/* An exact name beats a glob that comes first. */
	CU_ASSERT_PTR_EQUAL(tm_priv_observer_by_name(pl, "fc1"),
			    &pl->rules[1].observer);
	CU_ASSERT_PTR_EQUAL(tm_priv_observer_by_name(pl, "fc2"),
			    &pl->rules[0].observer);
	/* Among globs, the first in the file wins. */
	CU_ASSERT_PTR_EQUAL(tm_priv_observer_by_name(pl, "h1"),
			    &pl->rules[2].observer);
	CU_ASSERT_PTR_EQUAL(tm_priv_observer_by_name(pl, "h10"),
			    &pl->rules[3].observer);
	CU_ASSERT_PTR_EQUAL(tm_priv_observer_by_name(pl, "out"),
			    &pl->rules[4].observer);
	/* Nothing matches: the section's observer. */
	CU_ASSERT_PTR_EQUAL(tm_priv_observer_by_name(pl, "input"), &pl->observer);
	CU_ASSERT_PTR_EQUAL(tm_priv_observer_by_name(pl, "FC1"), &pl->observer);
	tm_pipeline_free(pl);
}

/* --- --set -------------------------------------------------------------- */

static void
test_overrides(void)
{
	static const char text[] = HEAD
		"calibration:\n"
		"  data: calib.npy\n"
		"emit:\n"
		"  - c_header: {path: out.h}\n";
	static const char *const ov[] = {
		"calibration.data=x.npy",
		"emit.c_header.prefix=abc",
		"calibration.batch=8",
		"calibration.observer=twin",
		NULL
	};
	char want[8192];
	tm_pipeline *pl = NULL;
	tm_error err;

	CU_ASSERT_EQUAL(load("ov.yaml", text, ov, &pl, &err), TM_OK);
	if (!pl)
		return;
	/* A relative --set path is the user's, from the current folder,
	 * like any other command-line argument... */
	CHECK_STR(pl->calib_data, "x.npy");
	/* ...and it has no line in the file. */
	CHECK_STR(pl->calib_file, "--set");
	CU_ASSERT_EQUAL(pl->calib_line, 0);
	CU_ASSERT_EQUAL(pl->batch, 8);
	/* A key that was not there is added. */
	CHECK_STR(plugin_name(&pl->observer), "twin");
	CU_ASSERT_EQUAL(pl->n_emitters, 1);
	if (pl->n_emitters == 1) {
		CHECK_STR(tm_params_get_string(pl->emitters[0].params,
					       "prefix"),
			  "abc");
		/* The file's own relative path still resolves. */
		snprintf(want, sizeof want, "%s/out.h", pl_dir);
		CHECK_STR(tm_params_get_string(pl->emitters[0].params, "path"),
			  want);
	}
	tm_pipeline_free(pl);
}

static void
test_override_bare_stage(void)
{
	static const char text[] = HEAD
		"calibration:\n"
		"  data: calib.npy\n"
		"emit:\n"
		"  - c_header\n";
	static const char *const ov[] = { "emit.c_header.path=out.h", NULL };
	tm_pipeline *pl = NULL;
	tm_error err;

	/* c_header requires path: the bare stage is completed by --set. */
	CU_ASSERT_EQUAL(load("bare.yaml", text, ov, &pl, &err), TM_OK);
	if (!pl)
		return;
	CU_ASSERT_EQUAL(pl->n_emitters, 1);
	if (pl->n_emitters == 1) {
		CHECK_STR(tm_params_get_string(pl->emitters[0].params, "path"),
			  "out.h");
		CHECK_STR(tm_params_get_string(pl->emitters[0].params,
					       "prefix"),
			  "model");
	}
	tm_pipeline_free(pl);
}

static void
test_override_new_sections(void)
{
	static const char *const ov[] = {
		"calibration.data=/d/c.npy",
		"calibration.tensors.fc1.observer=twin",
		NULL
	};
	tm_pipeline *pl = NULL;
	tm_error err;

	/* A section and a rule made from nothing. */
	CU_ASSERT_EQUAL(load("new.yaml", HEAD, ov, &pl, &err), TM_OK);
	if (!pl)
		return;
	CU_ASSERT_EQUAL(pl->has_calibration, 1);
	CHECK_STR(pl->calib_data, "/d/c.npy");
	CU_ASSERT_EQUAL(pl->batch, 64);
	CU_ASSERT_EQUAL(pl->n_rules, 1);
	if (pl->n_rules == 1) {
		CHECK_STR(pl->rules[0].pattern, "fc1");
		CHECK_STR(plugin_name(&pl->rules[0].observer), "twin");
		CU_ASSERT_PTR_EQUAL(tm_priv_observer_by_name(pl, "fc1"),
				    &pl->rules[0].observer);
	}
	tm_pipeline_free(pl);
}

/* emit.N.name addresses the N-th stage (from 0), which must be a
 * "name"; without an index, the first stage of that name. */
static void
test_override_stage_index(void)
{
	static const char text[] = HEAD
		"calibration:\n"
		"  data: calib.npy\n"
		"emit:\n"
		"  - c_header: {path: /o/a.h}\n"
		"  - c_header: {path: /o/b.h}\n";
	static const char *const second[] = { "emit.1.c_header.prefix=two",
					       "emit.c_header.prefix=one",
					       "emit.1.c_header.path=/o/c.h",
					       NULL };
	static const char *const wrong[] = { "emit.0.npy.dir=x", NULL };
	static const char *const past[] = { "emit.2.c_header.prefix=x",
					    NULL };
	tm_pipeline *pl = NULL;
	tm_error err;

	CU_ASSERT_EQUAL(load("idx.yaml", text, second, &pl, &err), TM_OK);
	if (!pl)
		return;
	CU_ASSERT_EQUAL(pl->n_emitters, 2);
	if (pl->n_emitters == 2) {
		const tm_params *p0 = pl->emitters[0].params;
		const tm_params *p1 = pl->emitters[1].params;

		CHECK_STR(tm_params_get_string(p0, "prefix"), "one");
		CHECK_STR(tm_params_get_string(p0, "path"), "/o/a.h");
		CHECK_STR(tm_params_get_string(p1, "prefix"), "two");
		CHECK_STR(tm_params_get_string(p1, "path"), "/o/c.h");
	}
	tm_pipeline_free(pl);
	EXPECT_ERR(text, wrong, TM_ERR_NOT_FOUND,
		   "--set emit.0.npy.dir=x: no stage 'npy' in that list");
	EXPECT_ERR(text, past, TM_ERR_NOT_FOUND,
		   "--set emit.2.c_header.prefix=x: no stage 'c_header' in "
		   "that list");
}

static void
test_override_errors(void)
{
	static const char text[] = HEAD
		"calibration:\n"
		"  data: calib.npy\n"
		"emit:\n"
		"  - c_header: {path: out.h}\n";
	static const char *const nokey[] = { "nokey", NULL };
	static const char *const noname[] = { "=x", NULL };
	static const char *const nostage[] = { "emit.nosuch.path=x", NULL };
	static const char *const badbatch[] = { "calibration.batch=0", NULL };
	static const char *const badkey[] = { "calibration.bach=8", NULL };
	static const char *const badparam[] = { "emit.c_header.prefx=a",
						NULL };

	EXPECT_ERR(text, nokey, TM_ERR_INVALID,
		   "--set nokey: expected section.key=value (e.g. "
		   "calibration.data=calib.npy)");
	EXPECT_ERR(text, noname, TM_ERR_INVALID,
		   "--set =x: expected section.key=value (e.g. "
		   "calibration.data=calib.npy)");
	EXPECT_ERR(text, nostage, TM_ERR_NOT_FOUND,
		   "--set emit.nosuch.path=x: no stage 'nosuch' in that list");
	/* Values from --set are checked like the file's, and say so. */
	EXPECT_ERR(text, badbatch, TM_ERR_INVALID,
		   "--set: calibration.batch: '0' is not an integer between 1 "
		   "and 65536");
	EXPECT_ERR(text, badkey, TM_ERR_INVALID,
		   "--set: unknown key 'bach' in calibration; did you mean "
		   "'batch'? (valid: data, observer, batch, tensors, ops, "
		   "preprocess)");
	EXPECT_ERR(text, badparam, TM_ERR_INVALID,
		   "--set: unknown key 'prefx' for emitter 'c_header'; did you "
		   "mean 'prefix'? (valid: path, prefix, source)");
}

/* --- errors in the file ------------------------------------------------- */

static void
test_file_errors(void)
{
	char path[4096], want[8192], buf[8192];
	tm_pipeline *pl = (tm_pipeline *)1;
	tm_error err;

	snprintf(path, sizeof path, "%s/no-such.yaml", pl_dir);
	tm_error_clear(&err);
	CU_ASSERT_EQUAL(tm_pipeline_load(path, reg, NULL, &pl, &err),
			TM_ERR_IO);
	CU_ASSERT_PTR_NULL(pl);
	snprintf(want, sizeof want,
		 "%s: cannot open pipeline: No such file or directory", path);
	CHECK_STR(tm_error_format(&err, buf, sizeof buf), want);

	EXPECT_ERR("", NULL, TM_ERR_INVALID,
		   ": empty pipeline (see tmpipe-pipeline(5) for the format)");
	EXPECT_ERR("# only a comment\n", NULL, TM_ERR_INVALID,
		   ": empty pipeline (see tmpipe-pipeline(5) for the format)");
	EXPECT_ERR("tmpipe: 1\n  model: x\n", NULL, TM_ERR_PARSE,
		   ":2:8: YAML syntax error: mapping values are not allowed "
		   "in this context");
	EXPECT_ERR("tmpipe: 1\nmodel: [a, b\n", NULL, TM_ERR_PARSE,
		   ":3:1: YAML syntax error: did not find expected ',' or ']' "
		   "while parsing a flow sequence");
	EXPECT_ERR("- tmpipe: 1\n- model: x\n", NULL, TM_ERR_INVALID,
		   ":1:1: a pipeline is a map of sections (tmpipe, model, "
		   "...), not a list");
	EXPECT_ERR("hello\n", NULL, TM_ERR_INVALID,
		   ":1:1: a pipeline is a map of sections (tmpipe, model, "
		   "...), not a scalar");
}

static void
test_top_level_errors(void)
{
	EXPECT_ERR("model:\n  frontend: npy\n", NULL, TM_ERR_INVALID,
		   ":1:1: missing 'tmpipe: 1' (the pipeline format version) "
		   "at the top");
	EXPECT_ERR("tmpipe: 2\nmodel:\n  frontend: npy\n", NULL,
		   TM_ERR_UNSUPPORTED,
		   ":1:9: pipeline format version '2' is not supported (this "
		   "tmpipe reads version 1)");
	EXPECT_ERR("tmpipe: [1]\n", NULL, TM_ERR_UNSUPPORTED,
		   ":1:9: pipeline format version '?' is not supported (this "
		   "tmpipe reads version 1)");
	EXPECT_ERR("tmpipe: 1\nmodle:\n  frontend: npy\n", NULL,
		   TM_ERR_INVALID,
		   ":2:1: unknown key 'modle' in the pipeline; did you mean "
		   "'model'? (valid: tmpipe, model, transforms, calibration, "
		   "quantize, verify, emit)");
	EXPECT_ERR("tmpipe: 1\noutput: x\n", NULL, TM_ERR_INVALID,
		   ":2:1: unknown key 'output' in the pipeline (valid: "
		   "tmpipe, model, transforms, calibration, quantize, verify, emit)");
	EXPECT_ERR(HEAD "tmpipe: 1\n", NULL, TM_ERR_INVALID,
		   ":7:1: duplicate key 'tmpipe' (first given on line 1)");
	EXPECT_ERR("tmpipe: 1\n", NULL, TM_ERR_INVALID,
		   ":1:1: missing 'model:' section (which frontend reads the "
		   "network, and from where)");
}

static void
test_model_errors(void)
{
	/* Duplicate keys are refused anywhere, also in a plugin's map
	 * parameter (two inputs of one name). */
	EXPECT_ERR("tmpipe: 1\nmodel:\n  frontend: npy\n"
		   "  inputs: {input: [2], input: [3]}\n  layers: []\n",
		   NULL, TM_ERR_INVALID,
		   ":4:24: duplicate key 'input' (first given on line 4)");
	EXPECT_ERR("tmpipe: 1\nmodel: npy\n", NULL, TM_ERR_INVALID,
		   ":2:8: model: expected a map, got a scalar");
	EXPECT_ERR("tmpipe: 1\nmodel:\n  dir: x\n", NULL, TM_ERR_INVALID,
		   ":3:3: model: missing 'frontend:' (e.g. frontend: npy)");
	EXPECT_ERR("tmpipe: 1\nmodel:\n  frontend: [npy]\n", NULL,
		   TM_ERR_INVALID,
		   ":3:13: model.frontend: expected a plugin name, got a "
		   "list");
	EXPECT_ERR("tmpipe: 1\nmodel:\n  frontend: onnx\n", NULL,
		   TM_ERR_NOT_FOUND,
		   ":3:13: frontend 'onnx' not found (available: npy)");
	EXPECT_ERR("tmpipe: 1\nmodel:\n  frontend: npz\n", NULL,
		   TM_ERR_NOT_FOUND,
		   ":3:13: frontend 'npz' not found; did you mean 'npy'? "
		   "(available: npy)");
	/* Frontend parameters are checked against npy's schema. */
	EXPECT_ERR("tmpipe: 1\nmodel:\n  frontend: npy\n"
		   "  inputs: {input: [2]}\n  layres: []\n",
		   NULL, TM_ERR_INVALID,
		   ":5:3: unknown key 'layres' for frontend 'npy'; did you "
		   "mean 'layers'? (valid: dir, inputs, layers)");
	EXPECT_ERR("tmpipe: 1\nmodel:\n  frontend: npy\n"
		   "  inputs: {input: [2]}\n",
		   NULL, TM_ERR_INVALID,
		   ":3:3: frontend 'npy': missing required key 'layers'");
}

static void
test_broken_plugin_named(void)
{
	char want[8192];

	/* The user's line first, then the plugin file and its problem. */
	snprintf(want, sizeof want,
		 ":3:13: %s/bad_abi.so: built for plugin ABI %d.0, this "
		 "tmpipe provides %d.%d; rebuild it against the headers of "
		 "this tmpipe",
		 plugin_dir, TM_PLUGIN_ABI_MAJOR + 1, TM_PLUGIN_ABI_MAJOR,
		 TM_PLUGIN_ABI_MINOR);
	EXPECT_ERR("tmpipe: 1\nmodel:\n  frontend: bad_abi\n", NULL,
		   TM_ERR_ABI, want);
	/* A plugin of another kind. */
	snprintf(want, sizeof want,
		 ":9:13: 'c_header' (%s/c_header.so) is an emitter plugin, "
		 "not an observer",
		 plugin_dir);
	EXPECT_ERR(HEAD "calibration:\n  data: c.npy\n  observer: c_header\n",
		   NULL, TM_ERR_INVALID, want);
}

static void
test_calibration_errors(void)
{
	EXPECT_ERR(HEAD "calibration: c.npy\n", NULL, TM_ERR_INVALID,
		   ":7:14: calibration: expected a map, got a scalar");
	EXPECT_ERR(HEAD "calibration:\n  bach: 8\n  data: c.npy\n", NULL,
		   TM_ERR_INVALID,
		   ":8:3: unknown key 'bach' in calibration; did you mean "
		   "'batch'? (valid: data, observer, batch, tensors, ops, "
		   "preprocess)");
	EXPECT_ERR(HEAD "calibration:\n  data: c.npy\n  data: d.npy\n", NULL,
		   TM_ERR_INVALID,
		   ":9:3: duplicate key 'data' (first given on line 8)");
	EXPECT_ERR(HEAD "calibration:\n  batch: 8\n", NULL, TM_ERR_INVALID,
		   ":8:3: calibration: missing 'data:' (a .npy of N samples)");
	EXPECT_ERR(HEAD "calibration:\n  data: [a.npy]\n", NULL,
		   TM_ERR_INVALID,
		   ":8:9: calibration.data: expected a file or folder name, "
		   "or a map {input: file-or-folder, ...}, got a list");
	EXPECT_ERR(HEAD "calibration:\n  data: c.npy\n  batch: 0\n", NULL,
		   TM_ERR_INVALID,
		   ":9:10: calibration.batch: '0' is not an integer between 1 "
		   "and 65536");
	EXPECT_ERR(HEAD "calibration:\n  data: c.npy\n  batch: 65537\n", NULL,
		   TM_ERR_INVALID,
		   ":9:10: calibration.batch: '65537' is not an integer "
		   "between 1 and 65536");
	EXPECT_ERR(HEAD "calibration:\n  data: c.npy\n  batch: 8.5\n", NULL,
		   TM_ERR_INVALID,
		   ":9:10: calibration.batch: '8.5' is not an integer between "
		   "1 and 65536");
}

static void
test_observer_errors(void)
{
	EXPECT_ERR(HEAD "calibration:\n  data: c.npy\n  observer: minmx\n",
		   NULL, TM_ERR_NOT_FOUND,
		   ":9:13: observer 'minmx' not found; did you mean 'minmax'? "
		   "(available: minmax, twin)");
	EXPECT_ERR(HEAD "calibration:\n  data: c.npy\n  observer: kll\n",
		   NULL, TM_ERR_NOT_FOUND,
		   ":9:13: observer 'kll' not found (available: minmax, twin)");
	EXPECT_ERR(HEAD "calibration:\n  data: c.npy\n"
			"  observer: {hi: 99}\n",
		   NULL, TM_ERR_INVALID,
		   ":9:13: observer: a map needs 'name:' (e.g. {name: "
		   "percentile, hi: 99.9})");
	EXPECT_ERR(HEAD "calibration:\n  data: c.npy\n"
			"  observer: {name: minmax, hi: 99}\n",
		   NULL, TM_ERR_INVALID,
		   ":9:28: unknown key 'hi': observer 'minmax' takes no "
		   "parameters");
	EXPECT_ERR(HEAD "calibration:\n  data: c.npy\n  observer: [minmax]\n",
		   NULL, TM_ERR_INVALID,
		   ":9:13: observer: expected a name or a map, got a list");
}

static void
test_tensors_errors(void)
{
	EXPECT_ERR(HEAD "calibration:\n  data: c.npy\n  tensors: [fc1]\n",
		   NULL, TM_ERR_INVALID,
		   ":9:12: calibration.tensors: expected a map of tensor name "
		   "(or glob) to {observer: ...}, got a list");
	EXPECT_ERR(HEAD "calibration:\n  data: c.npy\n  tensors:\n"
			"    fc1: minmax\n",
		   NULL, TM_ERR_INVALID,
		   ":10:10: calibration.tensors.fc1: expected {observer: "
		   "NAME, ...}, got a scalar");
	EXPECT_ERR(HEAD "calibration:\n  data: c.npy\n  tensors:\n"
			"    fc1: {observer: minmx}\n",
		   NULL, TM_ERR_NOT_FOUND,
		   ":10:21: observer 'minmx' not found; did you mean 'minmax'? "
		   "(available: minmax, twin)");
	/* With observer: {...}, its parameters go inside it. */
	EXPECT_ERR(HEAD "calibration:\n  data: c.npy\n  tensors:\n"
			"    fc1: {observer: {name: twin}, lo: 1}\n",
		   NULL, TM_ERR_INVALID,
		   ":10:35: unknown key 'lo' beside observer: {...}; put "
		   "observer parameters inside it");
	EXPECT_ERR(HEAD "calibration:\n  data: c.npy\n  tensors:\n"
			"    fc1: {observer: {name: twin, lo: 1}}\n",
		   NULL, TM_ERR_INVALID,
		   ":10:34: unknown key 'lo': observer 'twin' takes no "
		   "parameters");
	/* Observer parameters sit next to the name in a rule. */
	EXPECT_ERR(HEAD "calibration:\n  data: c.npy\n  tensors:\n"
			"    fc1: {observer: twin, lo: 1}\n",
		   NULL, TM_ERR_INVALID,
		   ":10:27: unknown key 'lo': observer 'twin' takes no "
		   "parameters");
}

static void
test_emit_errors(void)
{
	EXPECT_ERR(HEAD "emit:\n  - c_header: {path: a.h}\n", NULL,
		   TM_ERR_INVALID,
		   ":7:1: emit needs a calibration section: activation ranges "
		   "come from calibration data");
	EXPECT_ERR(HEAD "calibration: {data: c.npy}\nemit: c_header\n", NULL,
		   TM_ERR_INVALID,
		   ":8:7: emit: expected a list of emitter stages, got a "
		   "scalar");
	EXPECT_ERR(HEAD "calibration: {data: c.npy}\nemit:\n"
			"  - c_header: {path: a.h, prefx: m}\n",
		   NULL, TM_ERR_INVALID,
		   ":9:27: unknown key 'prefx' for emitter 'c_header'; did you "
		   "mean 'prefix'? (valid: path, prefix, source)");
	EXPECT_ERR(HEAD "calibration: {data: c.npy}\nemit:\n"
			"  - c_header: {prefix: m}\n",
		   NULL, TM_ERR_INVALID,
		   ":9:15: emitter 'c_header': missing required key 'path'");
	EXPECT_ERR(HEAD "calibration: {data: c.npy}\nemit:\n"
			"  - c_header: {path: ''}\n",
		   NULL, TM_ERR_INVALID, ":9:22: path: empty path");
}

/* The wrong-kind message above names the plugin's file; build it. */
static void
test_emit_wrong_kind(void)
{
	char want[8192];

	snprintf(want, sizeof want,
		 ":10:5: 'npy' (%s/npy.so) is a frontend plugin, not an "
		 "emitter",
		 plugin_dir);
	EXPECT_ERR(HEAD "calibration: {data: c.npy}\nemit:\n"
			"  - c_header: {path: a.h}\n  - npy\n",
		   NULL, TM_ERR_INVALID, want);
	EXPECT_ERR(HEAD "calibration: {data: c.npy}\nemit:\n  - c_headr\n",
		   NULL, TM_ERR_NOT_FOUND,
		   ":9:5: emitter 'c_headr' not found; did you mean "
		   "'c_header'? (available: c_header)");
	EXPECT_ERR(HEAD "transforms:\n  - fold_bn\n", NULL, TM_ERR_NOT_FOUND,
		   ":8:5: transform 'fold_bn' not found (no transform plugins "
		   "in the plugin path; see 'tmpipe plugins')");
}

/* --- regressions -------------------------------------------------------- */

/* A bare "- c_header" without its required path: the error must point at
 * the stage, like every other pipeline error. */
static void
test_bare_stage_missing_param(void)
{
	EXPECT_ERR(HEAD "calibration: {data: c.npy}\nemit:\n  - c_header\n",
		   NULL, TM_ERR_INVALID,
		   ":9:5: emitter 'c_header': missing required key 'path'");
}

/* A --set path of nothing but dots names no key: it must not be
 * accepted silently. */
static void
test_override_empty_path(void)
{
	static const char text[] = HEAD "calibration:\n  data: calib.npy\n";
	static const char *const dot[] = { ".=x", NULL };
	static const char *const dots[] = { "...=1", NULL };

	EXPECT_ERR(text, dot, TM_ERR_INVALID,
		   "--set .=x: expected section.key=value (e.g. "
		   "calibration.data=calib.npy)");
	EXPECT_ERR(text, dots, TM_ERR_INVALID,
		   "--set ...=1: expected section.key=value (e.g. "
		   "calibration.data=calib.npy)");
}

/* "expected a emitter name": the article must agree with the kind. */
static void
test_stage_item_article(void)
{
	EXPECT_ERR(HEAD "calibration: {data: c.npy}\nemit:\n"
			"  - {c_header: {path: a.h}, prefix: m}\n",
		   NULL, TM_ERR_INVALID,
		   ":9:5: emit[0]: expected an emitter name or 'name: "
		   "{parameters}'");
}

static const tm_test_case cases[] = {
	{ "a valid pipeline's fields", test_valid },
	{ "examples/xor/pipeline.yaml", test_example_xor },
	{ "minimal pipelines", test_minimal },
	{ "per-tensor rules and tm_priv_observer_for", test_rules },
	{ "--set overrides", test_overrides },
	{ "--set completes a bare stage", test_override_bare_stage },
	{ "--set creates sections and rules", test_override_new_sections },
	{ "--set emit.N.stage", test_override_stage_index },
	{ "--set errors", test_override_errors },
	{ "file, syntax and root errors", test_file_errors },
	{ "top-level errors", test_top_level_errors },
	{ "model errors", test_model_errors },
	{ "broken or wrong-kind plugin named", test_broken_plugin_named },
	{ "calibration errors", test_calibration_errors },
	{ "observer errors", test_observer_errors },
	{ "calibration.tensors errors", test_tensors_errors },
	{ "emit errors", test_emit_errors },
	{ "stage lists: kind and names", test_emit_wrong_kind },
	{ "regression: bare stage missing a required key",
	  test_bare_stage_missing_param },
	{ "regression: 'an emitter' in stage list messages",
	  test_stage_item_article },
	{ "regression: --set with no key names", test_override_empty_path },
	{ NULL, NULL }
};

static int
copy_file(const char *from_dir, const char *name)
{
	char from[4096], to[4096], block[8192];
	FILE *in, *out;
	size_t n;
	int ok = 1;

	snprintf(from, sizeof from, "%s/%s", from_dir, name);
	snprintf(to, sizeof to, "%s/%s", plugin_dir, name);
	in = fopen(from, "rb");
	if (!in) {
		fprintf(stderr, "cannot read %s: %s\n", from, strerror(errno));
		return 0;
	}
	out = fopen(to, "wb");
	if (!out) {
		fclose(in);
		return 0;
	}
	while ((n = fread(block, 1, sizeof block, in)) > 0)
		if (fwrite(block, 1, n, out) != n)
			ok = 0;
	fclose(in);
	if (fclose(out) != 0)
		ok = 0;
	return ok;
}

/* The registry and folders every case uses; 0 on success. */
static int
setup(void)
{
	const char *real = getenv("TMPIPE_PLUGIN_PATH");
	const char *fixtures = getenv("TMPIPE_FIXTURE_DIR");
	char xor_rel[4096];
	tm_error err;

	if (!real || !*real)
		real = "plugins/.libs";
	if (!fixtures || !*fixtures)
		fixtures = "tests/plugins/.libs";
	snprintf(plugin_dir, sizeof plugin_dir, "%s/plugins", tm_test_tmpdir());
	snprintf(pl_dir, sizeof pl_dir, "%s/pl", tm_test_tmpdir());
	if (mkdir(plugin_dir, 0777) != 0 || mkdir(pl_dir, 0777) != 0)
		return -1;
	if (!copy_file(real, "npy.so") || !copy_file(real, "minmax.so") ||
	    !copy_file(real, "c_header.so") ||
	    !copy_file(fixtures, "twin.so") ||
	    !copy_file(fixtures, "bad_abi.so"))
		return -1;
	snprintf(xor_rel, sizeof xor_rel, "%s/../examples/xor",
		 tm_test_srcdir());
	if (!realpath(xor_rel, xor_dir)) {
		fprintf(stderr, "%s: %s\n", xor_rel, strerror(errno));
		return -1;
	}
	reg = tm_registry_new();
	if (!reg)
		return -1;
	tm_error_clear(&err);
	if (tm_registry_add(reg, plugin_dir, 1, 0, &err)) {
		char buf[4096];

		fprintf(stderr, "%s\n", tm_error_format(&err, buf, sizeof buf));
		return -1;
	}
	return 0;
}

int
main(void)
{
	int rc;

	if (setup()) {
		tm_registry_free(reg);
		return 99;
	}
	if (tm_test_add_suite("pipeline", cases)) {
		tm_registry_free(reg);
		return 99;
	}
	rc = tm_test_run();
	tm_registry_free(reg);
	return rc;
}
