/* tmpipe tests — declared plugin parameters checked against YAML
 * (core/params.c).
 *
 * Every document is built in memory with libyaml and validated as
 * "p.yaml" in the folder "/base"; positions in the expected messages are
 * counted by hand (1-based line and column). */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/CUnit.h>
#include <yaml.h>

#include "params_priv.h"
#include "runner.h"

/* --- schemas ------------------------------------------------------------ */

static const char *const modes[] = { "fast", "exact", "approx", NULL };

static const tm_param_spec item_fields[] = {
	{ .name = "id", .type = TM_PARAM_STRING, .flags = TM_PARAM_REQUIRED },
	{ .name = "weight", .type = TM_PARAM_FLOAT, .def = "1.5" },
	TM_PARAM_END
};

static const tm_param_spec shape_field[] = {
	{ .name = "shape", .type = TM_PARAM_INT_LIST,
	  .flags = TM_PARAM_HAS_MIN, .min = 1 },
	TM_PARAM_END
};

/* One parameter of every type, with every kind of bound. */
static const tm_param_spec spec[] = {
	{ .name = "flag", .type = TM_PARAM_BOOL, .def = "false" },
	{ .name = "count", .type = TM_PARAM_INT, .def = "8",
	  .flags = TM_PARAM_HAS_MIN | TM_PARAM_HAS_MAX, .min = 1, .max = 16 },
	{ .name = "limit", .type = TM_PARAM_INT, .def = "10",
	  .flags = TM_PARAM_HAS_MAX, .max = 100 },
	{ .name = "ratio", .type = TM_PARAM_FLOAT, .def = "0.5",
	  .flags = TM_PARAM_HAS_MIN | TM_PARAM_HAS_MAX, .min = 0, .max = 1 },
	{ .name = "scale", .type = TM_PARAM_FLOAT, .def = "1",
	  .flags = TM_PARAM_HAS_MIN, .min = 0.25 },
	{ .name = "mode", .type = TM_PARAM_STRING, .def = "fast",
	  .choices = modes },
	{ .name = "label", .type = TM_PARAM_STRING },
	{ .name = "file", .type = TM_PARAM_PATH, .def = "data.bin" },
	{ .name = "dims", .type = TM_PARAM_INT_LIST },
	{ .name = "gains", .type = TM_PARAM_FLOAT_LIST },
	{ .name = "items", .type = TM_PARAM_LIST, .fields = item_fields },
	{ .name = "inputs", .type = TM_PARAM_MAP, .fields = shape_field },
	TM_PARAM_END
};

#define SPEC_KEYS                                                            \
	"flag, count, limit, ratio, scale, mode, label, file, dims, gains, " \
	"items, inputs"

static const tm_param_spec spec_required[] = {
	{ .name = "path", .type = TM_PARAM_PATH, .flags = TM_PARAM_REQUIRED },
	{ .name = "n", .type = TM_PARAM_INT, .def = "1" },
	TM_PARAM_END
};

static const tm_param_spec spec_none[] = { TM_PARAM_END };

/* --- YAML in memory ----------------------------------------------------- */

static int
load_doc(yaml_document_t *doc, const char *text)
{
	yaml_parser_t parser;
	int ok;

	if (!yaml_parser_initialize(&parser)) {
		CU_FAIL("yaml_parser_initialize");
		return 0;
	}
	yaml_parser_set_input_string(&parser, (const unsigned char *)text,
				     strlen(text));
	ok = yaml_parser_load(&parser, doc);
	yaml_parser_delete(&parser);
	if (!ok)
		fprintf(stderr, "\nbad test YAML: %s\n", text);
	CU_ASSERT(ok);
	return ok;
}

/* Validates text against sp as "emitter 'x'" (nodes from first_override
 * on come from --set, 0: none). The document is gone on return: the
 * parameters must not borrow from it. */
static tm_status
parse_ex(const char *text, const tm_param_spec *sp, const char *const *skip,
	 int first_override, tm_params **out, tm_error *err)
{
	yaml_document_t doc;
	tm_yaml_src src;
	tm_status st;

	*out = NULL;
	tm_error_clear(err);
	if (!load_doc(&doc, text))
		return TM_ERR_PARSE;
	src.doc = &doc;
	src.file = "p.yaml";
	src.basedir = "/base";
	src.first_override = first_override;
	st = tm_priv_params_from_yaml(sp, &src,
				      yaml_document_get_root_node(&doc), skip,
				      "emitter 'x'", out, err);
	yaml_document_delete(&doc);
	return st;
}

static tm_status
parse(const char *text, const tm_param_spec *sp, tm_params **out,
      tm_error *err)
{
	return parse_ex(text, sp, NULL, 0, out, err);
}

/* text must fail against sp with exactly want. */
#define EXPECT_ERR(text, sp, code, want)                                     \
	expect_err((text), (sp), (code), (want), __FILE__, __LINE__)

static void
expect_err(const char *text, const tm_param_spec *sp, tm_status code,
	   const char *want, const char *file, int line)
{
	tm_params *p = (tm_params *)1;
	tm_error err;
	tm_status st = parse(text, sp, &p, &err);

	if (st != code)
		fprintf(stderr, "\n%s:%d: status %d, want %d\n", file, line,
			(int)st, (int)code);
	CU_ASSERT_EQUAL(st, code);
	CU_ASSERT_EQUAL(err.code, code);
	CU_ASSERT_PTR_NULL(p);
	tm_test_check_err(&err, want, file, line);
	tm_priv_params_free(st ? NULL : p);
}

/* --- values ------------------------------------------------------------- */

static void
test_defaults(void)
{
	tm_params *p;
	tm_error err;

	CU_ASSERT_EQUAL(parse("label: hi\n", spec, &p, &err), TM_OK);
	CU_ASSERT_PTR_NOT_NULL(p);
	if (!p)
		return;
	CU_ASSERT_EQUAL(tm_params_get_bool(p, "flag"), 0);
	CU_ASSERT_EQUAL(tm_params_get_int(p, "count"), 8);
	CU_ASSERT_EQUAL(tm_params_get_int(p, "limit"), 10);
	CU_ASSERT_DOUBLE_EQUAL(tm_params_get_float(p, "ratio"), 0.5, 0);
	CU_ASSERT_DOUBLE_EQUAL(tm_params_get_float(p, "scale"), 1.0, 0);
	CHECK_STR(tm_params_get_string(p, "mode"), "fast");
	CHECK_STR(tm_params_get_string(p, "label"), "hi");
	/* A PATH default resolves like a value the user wrote. */
	CHECK_STR(tm_params_get_string(p, "file"), "/base/data.bin");
	/* Lists and maps default to empty. */
	CU_ASSERT_EQUAL(tm_params_list_len(p, "dims"), 0);
	CU_ASSERT_PTR_NULL(tm_params_get_ints(p, "dims"));
	CU_ASSERT_EQUAL(tm_params_list_len(p, "gains"), 0);
	CU_ASSERT_PTR_NULL(tm_params_get_floats(p, "gains"));
	CU_ASSERT_EQUAL(tm_params_list_len(p, "items"), 0);
	CU_ASSERT_PTR_NULL(tm_params_item(p, "items", 0));
	CU_ASSERT_EQUAL(tm_params_list_len(p, "inputs"), 0);
	CU_ASSERT_PTR_NULL(tm_params_key(p, "inputs", 0));

	CU_ASSERT_EQUAL(tm_params_is_set(p, "label"), 1);
	CU_ASSERT_EQUAL(tm_params_is_set(p, "count"), 0);
	CU_ASSERT_EQUAL(tm_params_is_set(p, "file"), 0);
	CU_ASSERT_EQUAL(tm_params_is_set(p, "nonesuch"), 0);
	tm_priv_params_free(p);
}

static void
test_defaults_without_yaml(void)
{
	tm_params *p = NULL;
	tm_error err;
	const char *file = "unset";
	unsigned line = 77, col = 77;

	tm_error_clear(&err);
	CU_ASSERT_EQUAL(tm_priv_params_defaults(spec, "emitter 'x'", &p, &err),
			TM_OK);
	CU_ASSERT_PTR_NOT_NULL(p);
	if (!p)
		return;
	CU_ASSERT_EQUAL(tm_params_get_int(p, "count"), 8);
	CHECK_STR(tm_params_get_string(p, "mode"), "fast");
	/* No pipeline: the PATH default stays as written. */
	CHECK_STR(tm_params_get_string(p, "file"), "data.bin");
	CU_ASSERT_PTR_NULL(tm_params_get_string(p, "label"));
	CU_ASSERT_EQUAL(tm_params_is_set(p, "count"), 0);
	/* Nothing was written anywhere. */
	CU_ASSERT_EQUAL(tm_params_where(p, NULL, &file, &line, &col), 0);
	CU_ASSERT_EQUAL(tm_params_where(p, "count", &file, &line, &col), 0);
	CHECK_STR(file, "unset");
	CU_ASSERT_EQUAL(line, 77);
	CU_ASSERT_EQUAL(col, 77);
	tm_priv_params_free(p);

	/* A required key cannot come from defaults. */
	p = (tm_params *)1;
	tm_error_clear(&err);
	CU_ASSERT_EQUAL(tm_priv_params_defaults(spec_required, "emitter 'y'",
						&p, &err),
			TM_ERR_INVALID);
	CU_ASSERT_PTR_NULL(p);
	CHECK_ERR(&err, "emitter 'y': missing required key 'path'");
}

static void
test_all_values(void)
{
	static const char text[] =
		"flag: yes\n"
		"count: 16\n"
		"limit: -5\n"
		"ratio: 1e-1\n"
		"scale: 0.25\n"
		"mode: exact\n"
		"label: hello world\n"
		"file: sub/x.bin\n"
		"dims: [1, -2, 3]\n"
		"gains: [0.5, 2]\n"
		"items:\n"
		"  - {id: a}\n"
		"  - id: b\n"
		"    weight: 3\n"
		"inputs:\n"
		"  x: [2]\n"
		"  y: [3, 4]\n";
	const tm_params *it;
	const int64_t *ints;
	const double *fl;
	tm_params *p;
	tm_error err;

	CU_ASSERT_EQUAL(parse(text, spec, &p, &err), TM_OK);
	CU_ASSERT_EQUAL(err.code, TM_OK);
	CU_ASSERT_PTR_NOT_NULL(p);
	if (!p)
		return;
	CU_ASSERT_EQUAL(tm_params_get_bool(p, "flag"), 1);
	CU_ASSERT_EQUAL(tm_params_get_int(p, "count"), 16);
	CU_ASSERT_EQUAL(tm_params_get_int(p, "limit"), -5);
	CU_ASSERT_DOUBLE_EQUAL(tm_params_get_float(p, "ratio"), 0.1, 0);
	CU_ASSERT_DOUBLE_EQUAL(tm_params_get_float(p, "scale"), 0.25, 0);
	CHECK_STR(tm_params_get_string(p, "mode"), "exact");
	CHECK_STR(tm_params_get_string(p, "label"), "hello world");
	CHECK_STR(tm_params_get_string(p, "file"), "/base/sub/x.bin");

	CU_ASSERT_EQUAL(tm_params_list_len(p, "dims"), 3);
	ints = tm_params_get_ints(p, "dims");
	CU_ASSERT_PTR_NOT_NULL(ints);
	if (ints) {
		CU_ASSERT_EQUAL(ints[0], 1);
		CU_ASSERT_EQUAL(ints[1], -2);
		CU_ASSERT_EQUAL(ints[2], 3);
	}
	CU_ASSERT_EQUAL(tm_params_list_len(p, "gains"), 2);
	fl = tm_params_get_floats(p, "gains");
	CU_ASSERT_PTR_NOT_NULL(fl);
	if (fl) {
		CU_ASSERT_DOUBLE_EQUAL(fl[0], 0.5, 0);
		CU_ASSERT_DOUBLE_EQUAL(fl[1], 2.0, 0);
	}

	/* LIST: each item is its own tm_params with defaults. */
	CU_ASSERT_EQUAL(tm_params_list_len(p, "items"), 2);
	it = tm_params_item(p, "items", 0);
	CU_ASSERT_PTR_NOT_NULL(it);
	CHECK_STR(tm_params_get_string(it, "id"), "a");
	CU_ASSERT_DOUBLE_EQUAL(tm_params_get_float(it, "weight"), 1.5, 0);
	CU_ASSERT_EQUAL(tm_params_is_set(it, "weight"), 0);
	it = tm_params_item(p, "items", 1);
	CU_ASSERT_PTR_NOT_NULL(it);
	CHECK_STR(tm_params_get_string(it, "id"), "b");
	CU_ASSERT_DOUBLE_EQUAL(tm_params_get_float(it, "weight"), 3.0, 0);
	CU_ASSERT_EQUAL(tm_params_is_set(it, "weight"), 1);
	CU_ASSERT_PTR_NULL(tm_params_item(p, "items", 2));
	/* A LIST has no keys. */
	CU_ASSERT_PTR_NULL(tm_params_key(p, "items", 0));

	/* MAP: free keys, each value read by fields[0]'s name. */
	CU_ASSERT_EQUAL(tm_params_list_len(p, "inputs"), 2);
	CHECK_STR(tm_params_key(p, "inputs", 0), "x");
	CHECK_STR(tm_params_key(p, "inputs", 1), "y");
	CU_ASSERT_PTR_NULL(tm_params_key(p, "inputs", 2));
	it = tm_params_item(p, "inputs", 0);
	CU_ASSERT_EQUAL(tm_params_list_len(it, "shape"), 1);
	ints = tm_params_get_ints(it, "shape");
	CU_ASSERT(ints && ints[0] == 2);
	it = tm_params_item(p, "inputs", 1);
	CU_ASSERT_EQUAL(tm_params_list_len(it, "shape"), 2);
	ints = tm_params_get_ints(it, "shape");
	CU_ASSERT(ints && ints[0] == 3 && ints[1] == 4);
	CU_ASSERT_EQUAL(tm_params_is_set(it, "shape"), 1);

	for (const tm_param_spec *s = spec; s->name; s++)
		CU_ASSERT_EQUAL(tm_params_is_set(p, s->name), 1);
	tm_priv_params_free(p);
}

static void
test_bool_spellings(void)
{
	static const struct {
		const char *text;
		int want;
	} cases[] = {
		{ "flag: true", 1 }, { "flag: True", 1 }, { "flag: yes", 1 },
		{ "flag: on", 1 },   { "flag: ON", 1 },	  { "flag: false", 0 },
		{ "flag: FALSE", 0 }, { "flag: no", 0 },  { "flag: off", 0 },
		{ "flag: No", 0 },
	};

	for (size_t i = 0; i < TM_ARRAY_LEN(cases); i++) {
		tm_params *p;
		tm_error err;

		CU_ASSERT_EQUAL(parse(cases[i].text, spec, &p, &err), TM_OK);
		if (tm_params_get_bool(p, "flag") != cases[i].want)
			fprintf(stderr, "\n'%s' read as %d\n", cases[i].text,
				tm_params_get_bool(p, "flag"));
		CU_ASSERT_EQUAL(tm_params_get_bool(p, "flag"), cases[i].want);
		CU_ASSERT_EQUAL(tm_params_is_set(p, "flag"), 1);
		tm_priv_params_free(p);
	}
	EXPECT_ERR("flag: 1", spec, TM_ERR_INVALID,
		   "p.yaml:1:7: flag: '1' is not a boolean (true or false)");
	EXPECT_ERR("flag: yess", spec, TM_ERR_INVALID,
		   "p.yaml:1:7: flag: 'yess' is not a boolean (true or false)");
}

static void
test_int_bounds(void)
{
	tm_params *p;
	tm_error err;

	CU_ASSERT_EQUAL(parse("count: 1", spec, &p, &err), TM_OK);
	CU_ASSERT_EQUAL(tm_params_get_int(p, "count"), 1);
	tm_priv_params_free(p);
	CU_ASSERT_EQUAL(parse("limit: 100", spec, &p, &err), TM_OK);
	CU_ASSERT_EQUAL(tm_params_get_int(p, "limit"), 100);
	tm_priv_params_free(p);

	EXPECT_ERR("count: 17", spec, TM_ERR_INVALID,
		   "p.yaml:1:8: count: '17' is not an integer between 1 and "
		   "16");
	EXPECT_ERR("count: 0", spec, TM_ERR_INVALID,
		   "p.yaml:1:8: count: '0' is not an integer between 1 and "
		   "16");
	EXPECT_ERR("count: 1.5", spec, TM_ERR_INVALID,
		   "p.yaml:1:8: count: '1.5' is not an integer between 1 and "
		   "16");
	EXPECT_ERR("count: 0x10", spec, TM_ERR_INVALID,
		   "p.yaml:1:8: count: '0x10' is not an integer between 1 and "
		   "16");
	EXPECT_ERR("limit: 101", spec, TM_ERR_INVALID,
		   "p.yaml:1:8: limit: '101' is not an integer of at most 100");
	EXPECT_ERR("limit: 99999999999999999999", spec, TM_ERR_INVALID,
		   "p.yaml:1:8: limit: '99999999999999999999' is not an "
		   "integer of at most 100");
}

static void
test_float_bounds(void)
{
	tm_params *p;
	tm_error err;

	CU_ASSERT_EQUAL(parse("ratio: 1", spec, &p, &err), TM_OK);
	CU_ASSERT_DOUBLE_EQUAL(tm_params_get_float(p, "ratio"), 1.0, 0);
	tm_priv_params_free(p);
	CU_ASSERT_EQUAL(parse("ratio: -0.0", spec, &p, &err), TM_OK);
	CU_ASSERT_DOUBLE_EQUAL(tm_params_get_float(p, "ratio"), 0.0, 0);
	tm_priv_params_free(p);

	EXPECT_ERR("ratio: 1.5", spec, TM_ERR_INVALID,
		   "p.yaml:1:8: ratio: '1.5' is not a number between 0 and 1");
	EXPECT_ERR("scale: 0.1", spec, TM_ERR_INVALID,
		   "p.yaml:1:8: scale: '0.1' is not a number of at least "
		   "0.25");
	/* Non-finite values never pass, in any spelling. */
	EXPECT_ERR("scale: nan", spec, TM_ERR_INVALID,
		   "p.yaml:1:8: scale: 'nan' is not a number of at least "
		   "0.25");
	EXPECT_ERR("scale: inf", spec, TM_ERR_INVALID,
		   "p.yaml:1:8: scale: 'inf' is not a number of at least "
		   "0.25");
	EXPECT_ERR("scale: .inf", spec, TM_ERR_INVALID,
		   "p.yaml:1:8: scale: '.inf' is not a number of at least "
		   "0.25");
	EXPECT_ERR("scale: 1e999", spec, TM_ERR_INVALID,
		   "p.yaml:1:8: scale: '1e999' is not a number of at least "
		   "0.25");
	EXPECT_ERR("gains: [1, nan]", spec, TM_ERR_INVALID,
		   "p.yaml:1:12: gains[1]: 'nan' is not a number");
	EXPECT_ERR("gains: [-inf]", spec, TM_ERR_INVALID,
		   "p.yaml:1:9: gains[0]: '-inf' is not a number");
}

static void
test_string_choices(void)
{
	EXPECT_ERR("mode: exat", spec, TM_ERR_INVALID,
		   "p.yaml:1:7: mode: 'exat' is not one of fast, exact, "
		   "approx; did you mean 'exact'?");
	EXPECT_ERR("mode: slow", spec, TM_ERR_INVALID,
		   "p.yaml:1:7: mode: 'slow' is not one of fast, exact, "
		   "approx");
	/* Choices are case-sensitive. */
	EXPECT_ERR("mode: Fast", spec, TM_ERR_INVALID,
		   "p.yaml:1:7: mode: 'Fast' is not one of fast, exact, "
		   "approx; did you mean 'fast'?");
}

static void
test_paths(void)
{
	tm_params *p;
	tm_error err;

	CU_ASSERT_EQUAL(parse("file: /abs/f.bin", spec, &p, &err), TM_OK);
	CHECK_STR(tm_params_get_string(p, "file"), "/abs/f.bin");
	tm_priv_params_free(p);
	CU_ASSERT_EQUAL(parse("file: ../up.bin", spec, &p, &err), TM_OK);
	CHECK_STR(tm_params_get_string(p, "file"), "/base/../up.bin");
	tm_priv_params_free(p);
	EXPECT_ERR("file: ''", spec, TM_ERR_INVALID,
		   "p.yaml:1:7: file: empty path");
}

static void
test_lists(void)
{
	EXPECT_ERR("dims: [1, x]", spec, TM_ERR_INVALID,
		   "p.yaml:1:11: dims[1]: 'x' is not an integer");
	EXPECT_ERR("dims: [[1]]", spec, TM_ERR_INVALID,
		   "p.yaml:1:8: dims[0]: expected a number, got a list");
	EXPECT_ERR("gains: {a: 1}", spec, TM_ERR_INVALID,
		   "p.yaml:1:8: gains: expected a float list, got a map");
}

static void
test_list_of_maps(void)
{
	EXPECT_ERR("items: [{weight: 2}]", spec, TM_ERR_INVALID,
		   "p.yaml:1:9: items[0]: missing required key 'id'");
	EXPECT_ERR("items:\n  - id: a\n  - weight: 2\n", spec, TM_ERR_INVALID,
		   "p.yaml:3:5: items[1]: missing required key 'id'");
	EXPECT_ERR("items: [3]", spec, TM_ERR_INVALID,
		   "p.yaml:1:9: items[0]: expected a map, got a scalar");
	EXPECT_ERR("items: {id: a}", spec, TM_ERR_INVALID,
		   "p.yaml:1:8: items: expected a list, got a map");
	EXPECT_ERR("items: [{id: a, wieght: 2}]", spec, TM_ERR_INVALID,
		   "p.yaml:1:17: unknown key 'wieght' for items[0]; did you "
		   "mean 'weight'? (valid: id, weight)");
	EXPECT_ERR("items: [{id: a, weight: heavy}]", spec, TM_ERR_INVALID,
		   "p.yaml:1:25: weight: 'heavy' is not a number");
}

static void
test_map_of_lists(void)
{
	EXPECT_ERR("inputs: [1]", spec, TM_ERR_INVALID,
		   "p.yaml:1:9: inputs: expected a map, got a list");
	EXPECT_ERR("inputs: {x: [0]}", spec, TM_ERR_INVALID,
		   "p.yaml:1:14: inputs.x[0]: '0' is not an integer of at least 1");
}

static void
test_required(void)
{
	tm_params *p;
	tm_error err;

	EXPECT_ERR("n: 2\n", spec_required, TM_ERR_INVALID,
		   "p.yaml:1:1: emitter 'x': missing required key 'path'");
	/* Nothing given at all (no map): no position to give. */
	{
		yaml_document_t doc;
		tm_yaml_src src;

		if (load_doc(&doc, "a: 1")) {
			src.doc = &doc;
			src.file = "p.yaml";
			src.basedir = "/base";
			src.first_override = 0;
			p = (tm_params *)1;
			tm_error_clear(&err);
			CU_ASSERT_EQUAL(tm_priv_params_from_yaml(
						spec_required, &src, NULL, NULL,
						"emitter 'x'", &p, &err),
					TM_ERR_INVALID);
			CU_ASSERT_PTR_NULL(p);
			CHECK_ERR(&err,
				  "emitter 'x': missing required key 'path'");
			yaml_document_delete(&doc);
		}
	}
	CU_ASSERT_EQUAL(parse("path: out.h\n", spec_required, &p, &err),
			TM_OK);
	CHECK_STR(tm_params_get_string(p, "path"), "/base/out.h");
	CU_ASSERT_EQUAL(tm_params_get_int(p, "n"), 1);
	tm_priv_params_free(p);
}

static void
test_unknown_keys(void)
{
	tm_params *p;
	tm_error err;
	static const char *const skip[] = { "frontend", NULL };

	EXPECT_ERR("count: 3\ncounts: 4\n", spec, TM_ERR_INVALID,
		   "p.yaml:2:1: unknown key 'counts' for emitter 'x'; did you "
		   "mean 'count'? (valid: " SPEC_KEYS ")");
	EXPECT_ERR("labl: a\n", spec, TM_ERR_INVALID,
		   "p.yaml:1:1: unknown key 'labl' for emitter 'x'; did you "
		   "mean 'label'? (valid: " SPEC_KEYS ")");
	EXPECT_ERR("zzz: 1\n", spec, TM_ERR_INVALID,
		   "p.yaml:1:1: unknown key 'zzz' for emitter 'x' (valid: "
		   SPEC_KEYS ")");
	EXPECT_ERR("flag: on\nprefix: a\n", spec_none, TM_ERR_INVALID,
		   "p.yaml:1:1: unknown key 'flag': emitter 'x' takes no "
		   "parameters");
	/* Keys the caller handles are skipped. */
	CU_ASSERT_EQUAL(parse_ex("frontend: npy\ncount: 2\n", spec, skip, 0,
				 &p, &err),
			TM_OK);
	CU_ASSERT_EQUAL(tm_params_get_int(p, "count"), 2);
	tm_priv_params_free(p);
	CU_ASSERT_EQUAL(parse_ex("frontend: npy\n", spec_none, skip, 0, &p,
				 &err),
			TM_OK);
	CU_ASSERT_PTR_NOT_NULL(p);
	tm_priv_params_free(p);
}

static void
test_node_kinds(void)
{
	EXPECT_ERR("[1, 2]", spec, TM_ERR_INVALID,
		   "p.yaml:1:1: emitter 'x': expected a map of parameters, got "
		   "a list");
	EXPECT_ERR("just text", spec, TM_ERR_INVALID,
		   "p.yaml:1:1: emitter 'x': expected a map of parameters, got "
		   "a scalar");
	EXPECT_ERR("flag: {a: 1}", spec, TM_ERR_INVALID,
		   "p.yaml:1:7: flag: expected a bool, got a map");
	EXPECT_ERR("label: [a]", spec, TM_ERR_INVALID,
		   "p.yaml:1:8: label: expected a string, got a list");
	EXPECT_ERR("file:\n  - a\n", spec, TM_ERR_INVALID,
		   "p.yaml:2:3: file: expected a path, got a list");
	EXPECT_ERR("? [a]\n: 1\n", spec, TM_ERR_INVALID,
		   "p.yaml:1:3: emitter 'x': keys must be names, not a list");
}

static void
test_duplicate_keys(void)
{
	EXPECT_ERR("count: 1\nflag: on\ncount: 2\n", spec, TM_ERR_INVALID,
		   "p.yaml:3:1: emitter 'x': 'count' is given twice");
	EXPECT_ERR("items:\n  - {id: a, id: b}\n", spec, TM_ERR_INVALID,
		   "p.yaml:2:13: items[0]: 'id' is given twice");
}

static void
test_positions(void)
{
	static const char text[] =
		"# a comment line\n"
		"flag: on\n"
		"\n"
		"count:   12\n"
		"items:\n"
		"  - id: a\n"
		"    weight: 2\n"
		"inputs:\n"
		"  x: [2]\n";
	const tm_params *it;
	const char *file = NULL;
	unsigned line = 0, col = 0;
	tm_params *p;
	tm_error err;

	CU_ASSERT_EQUAL(parse(text, spec, &p, &err), TM_OK);
	CU_ASSERT_PTR_NOT_NULL(p);
	if (!p)
		return;
	/* A key the user wrote: its name's position. */
	CU_ASSERT_EQUAL(tm_params_where(p, "count", &file, &line, &col), 1);
	CHECK_STR(file, "p.yaml");
	CU_ASSERT_EQUAL(line, 4);
	CU_ASSERT_EQUAL(col, 1);
	/* The whole map: where it starts. */
	CU_ASSERT_EQUAL(tm_params_where(p, NULL, &file, &line, &col), 1);
	CU_ASSERT_EQUAL(line, 2);
	CU_ASSERT_EQUAL(col, 1);
	/* A default was written nowhere. */
	line = col = 99;
	CU_ASSERT_EQUAL(tm_params_where(p, "ratio", &file, &line, &col), 0);
	CU_ASSERT_EQUAL(line, 99);
	CU_ASSERT_EQUAL(tm_params_where(p, "nonesuch", &file, &line, &col),
			0);
	/* NULL outputs are allowed. */
	CU_ASSERT_EQUAL(tm_params_where(p, "flag", NULL, NULL, NULL), 1);

	/* LIST items keep their own positions. */
	it = tm_params_item(p, "items", 0);
	CU_ASSERT_EQUAL(tm_params_where(it, "weight", &file, &line, &col), 1);
	CU_ASSERT_EQUAL(line, 7);
	CU_ASSERT_EQUAL(col, 5);
	CU_ASSERT_EQUAL(tm_params_where(it, NULL, &file, &line, &col), 1);
	CU_ASSERT_EQUAL(line, 6);
	CU_ASSERT_EQUAL(col, 5);
	CU_ASSERT_EQUAL(tm_params_where(it, "weight", &file, &line, &col), 1);

	/* A MAP item: the map at its key, the value where it is. */
	it = tm_params_item(p, "inputs", 0);
	CU_ASSERT_EQUAL(tm_params_where(it, NULL, &file, &line, &col), 1);
	CU_ASSERT_EQUAL(line, 9);
	CU_ASSERT_EQUAL(col, 3);
	CU_ASSERT_EQUAL(tm_params_where(it, "shape", &file, &line, &col), 1);
	CU_ASSERT_EQUAL(line, 9);
	CU_ASSERT_EQUAL(col, 6);

	/* tm_params_error points at the key, or at the map for a default. */
	tm_error_clear(&err);
	CU_ASSERT_EQUAL(tm_params_error(p, "count", &err, TM_ERR_INVALID,
					"count %d needs %s", 12, "more"),
			TM_ERR_INVALID);
	CU_ASSERT_EQUAL(err.code, TM_ERR_INVALID);
	CHECK_ERR(&err, "p.yaml:4:1: count 12 needs more");
	tm_error_clear(&err);
	CU_ASSERT_EQUAL(tm_params_error(p, "ratio", &err, TM_ERR_NUMERIC,
					"ratio too small"),
			TM_ERR_NUMERIC);
	CHECK_ERR(&err, "p.yaml:2:1: ratio too small");
	tm_error_clear(&err);
	it = tm_params_item(p, "items", 0);
	tm_params_error(it, "id", &err, TM_ERR_NOT_FOUND, "no tensor '%s'",
			tm_params_get_string(it, "id"));
	CHECK_ERR(&err, "p.yaml:6:5: no tensor 'a'");
	tm_priv_params_free(p);

	/* Without any YAML, only the message. */
	CU_ASSERT_EQUAL(tm_priv_params_defaults(spec, "x", &p, &err), TM_OK);
	tm_error_clear(&err);
	tm_params_error(p, "count", &err, TM_ERR_INVALID, "bad");
	CHECK_ERR(&err, "bad");
	tm_priv_params_free(p);
}

/* Nodes from index first_override on came from --set: their errors say
 * so instead of pointing into the file. */
static void
test_override_position(void)
{
	tm_params *p = (tm_params *)1;
	tm_error err;

	/* Nodes: 1 the map, 2 "flag", 3 "on", 4 "count", 5 "99". */
	CU_ASSERT_EQUAL(parse_ex("flag: on\ncount: 99\n", spec, NULL, 4, &p,
				 &err),
			TM_ERR_INVALID);
	CU_ASSERT_PTR_NULL(p);
	CHECK_ERR(&err, "--set: count: '99' is not an integer between 1 and "
			"16");
	CU_ASSERT_EQUAL(parse_ex("flag: maybe\ncount: 2\n", spec, NULL, 4, &p,
				 &err),
			TM_ERR_INVALID);
	CHECK_ERR(&err, "p.yaml:1:7: flag: 'maybe' is not a boolean (true or "
			"false)");
}

static void
test_accessors_wrong_type(void)
{
	tm_params *p;
	tm_error err;

	CU_ASSERT_EQUAL(parse("count: 3\nlabel: z\ndims: [4]\n", spec, &p,
			      &err),
			TM_OK);
	if (!p)
		return;
	/* Asking with the wrong type or an undeclared name: fallbacks. */
	CU_ASSERT_EQUAL(tm_params_get_int(p, "label"), 0);
	CU_ASSERT_PTR_NULL(tm_params_get_string(p, "count"));
	CU_ASSERT_EQUAL(tm_params_get_bool(p, "count"), 0);
	CU_ASSERT_DOUBLE_EQUAL(tm_params_get_float(p, "count"), 0.0, 0);
	CU_ASSERT_PTR_NULL(tm_params_get_floats(p, "dims"));
	CU_ASSERT_PTR_NULL(tm_params_get_ints(p, "nonesuch"));
	CU_ASSERT_EQUAL(tm_params_get_int(p, "nonesuch"), 0);
	CU_ASSERT_PTR_NULL(tm_params_item(p, "dims", 0));
	CU_ASSERT_EQUAL(tm_params_get_int(NULL, "count"), 0);
	CU_ASSERT_EQUAL(tm_params_is_set(NULL, "count"), 0);
	CU_ASSERT_EQUAL(tm_params_list_len(NULL, "dims"), 0);
	CU_ASSERT_EQUAL(tm_params_where(NULL, "count", NULL, NULL, NULL), 0);
	CU_ASSERT_EQUAL(tm_params_get_int(p, "count"), 3);
	tm_priv_params_free(p);
	tm_priv_params_free(NULL);
}

/* --- schema checks ------------------------------------------------------ */

static void
check_bad_spec(const tm_param_spec *sp, tm_status code, const char *want,
	       const char *file, int line)
{
	tm_error err;

	tm_error_clear(&err);
	CU_ASSERT_EQUAL(tm_priv_params_check_spec(sp, &err), code);
	CU_ASSERT_EQUAL(err.code, code);
	tm_test_check_err(&err, want, file, line);
}

#define CHECK_BAD_SPEC(sp, code, want)                                       \
	check_bad_spec((sp), (code), (want), __FILE__, __LINE__)

static void
test_check_spec(void)
{
	static const tm_param_spec bad_int[] = {
		{ .name = "ok", .type = TM_PARAM_BOOL, .def = "no" },
		{ .name = "n", .type = TM_PARAM_INT, .def = "abc" },
		TM_PARAM_END
	};
	static const tm_param_spec out_of_bounds[] = {
		{ .name = "c", .type = TM_PARAM_INT, .def = "20",
		  .flags = TM_PARAM_HAS_MAX, .max = 16 },
		TM_PARAM_END
	};
	static const tm_param_spec bad_choice[] = {
		{ .name = "mode", .type = TM_PARAM_STRING, .def = "slow",
		  .choices = modes },
		TM_PARAM_END
	};
	static const tm_param_spec nan_default[] = {
		{ .name = "f", .type = TM_PARAM_FLOAT, .def = "nan" },
		TM_PARAM_END
	};
	static const tm_param_spec list_no_fields[] = {
		{ .name = "items", .type = TM_PARAM_LIST },
		TM_PARAM_END
	};
	static const tm_param_spec map_no_fields[] = {
		{ .name = "inputs", .type = TM_PARAM_MAP, .fields = spec_none },
		TM_PARAM_END
	};
	static const tm_param_spec bad_type[] = {
		{ .name = "t", .type = (tm_param_type)99 },
		TM_PARAM_END
	};
	static const tm_param_spec zero_type[] = {
		{ .name = "z" },
		TM_PARAM_END
	};
	static const tm_param_spec bad_item[] = {
		{ .name = "k", .type = TM_PARAM_INT, .def = "x" },
		TM_PARAM_END
	};
	static const tm_param_spec list_bad_item[] = {
		{ .name = "items", .type = TM_PARAM_LIST, .fields = bad_item },
		TM_PARAM_END
	};
	tm_error err;

	tm_error_clear(&err);
	CU_ASSERT_EQUAL(tm_priv_params_check_spec(spec, &err), TM_OK);
	CU_ASSERT_EQUAL(tm_priv_params_check_spec(spec_required, &err), TM_OK);
	CU_ASSERT_EQUAL(tm_priv_params_check_spec(spec_none, &err), TM_OK);
	CU_ASSERT_EQUAL(tm_priv_params_check_spec(NULL, &err), TM_OK);
	CU_ASSERT_EQUAL(err.code, TM_OK);

	CHECK_BAD_SPEC(bad_int, TM_ERR_INTERNAL,
		       "n: bad default: n: 'abc' is not an integer");
	CHECK_BAD_SPEC(out_of_bounds, TM_ERR_INTERNAL,
		       "c: bad default: c: '20' is not an integer of at most "
		       "16");
	CHECK_BAD_SPEC(bad_choice, TM_ERR_INTERNAL,
		       "mode: bad default: mode: 'slow' is not one of fast, "
		       "exact, approx");
	CHECK_BAD_SPEC(nan_default, TM_ERR_INTERNAL,
		       "f: bad default: f: 'nan' is not a number");
	CHECK_BAD_SPEC(list_no_fields, TM_ERR_INVALID,
		       "parameter 'items' is a list without fields");
	CHECK_BAD_SPEC(map_no_fields, TM_ERR_INVALID,
		       "parameter 'inputs' is a map without fields");
	CHECK_BAD_SPEC(bad_type, TM_ERR_INVALID,
		       "parameter 't' has unknown type 99");
	CHECK_BAD_SPEC(zero_type, TM_ERR_INVALID,
		       "parameter 'z' has unknown type 0");
	CHECK_BAD_SPEC(list_bad_item, TM_ERR_INTERNAL,
		       "k: bad default: k: 'x' is not an integer");
}

/* --- regressions -------------------------------------------------------- */

/* "expected a int": the article must agree with the type name. */
static void
test_article_before_int(void)
{
	EXPECT_ERR("dims: 3", spec, TM_ERR_INVALID,
		   "p.yaml:1:7: dims: expected an int list, got a scalar");
	EXPECT_ERR("inputs: {x: {a: 1}}", spec, TM_ERR_INVALID,
		   "p.yaml:1:13: inputs.x: expected an int list, got a map");
	EXPECT_ERR("count: [1]", spec, TM_ERR_INVALID,
		   "p.yaml:1:8: count: expected an int, got a list");
}

/* A MAP's value spec is a schema too: an unknown type there must be
 * caught at load time, like one in a LIST's fields. */
static void
test_check_spec_map_value(void)
{
	static const tm_param_spec bad_value_type[] = {
		{ .name = "v", .type = (tm_param_type)42 },
		TM_PARAM_END
	};
	static const tm_param_spec map_bad_value[] = {
		{ .name = "m", .type = TM_PARAM_MAP, .fields = bad_value_type },
		TM_PARAM_END
	};

	CHECK_BAD_SPEC(map_bad_value, TM_ERR_INVALID,
		       "parameter 'v' has unknown type 42");
}

static void
test_type_names(void)
{
	CHECK_STR(tm_param_type_name(TM_PARAM_BOOL), "bool");
	CHECK_STR(tm_param_type_name(TM_PARAM_INT), "int");
	CHECK_STR(tm_param_type_name(TM_PARAM_FLOAT), "float");
	CHECK_STR(tm_param_type_name(TM_PARAM_STRING), "string");
	CHECK_STR(tm_param_type_name(TM_PARAM_PATH), "path");
	CHECK_STR(tm_param_type_name(TM_PARAM_INT_LIST), "int list");
	CHECK_STR(tm_param_type_name(TM_PARAM_FLOAT_LIST), "float list");
	CHECK_STR(tm_param_type_name(TM_PARAM_LIST), "list");
	CHECK_STR(tm_param_type_name(TM_PARAM_MAP), "map");
	CHECK_STR(tm_param_type_name((tm_param_type)0), "?");
	CHECK_STR(tm_param_type_name(TM_PARAM_TYPE_COUNT), "?");
}

static const tm_test_case cases[] = {
	{ "defaults apply when a key is absent", test_defaults },
	{ "defaults without YAML", test_defaults_without_yaml },
	{ "every type read back", test_all_values },
	{ "bool spellings", test_bool_spellings },
	{ "int bounds", test_int_bounds },
	{ "float bounds and non-finite values", test_float_bounds },
	{ "string choices and suggestion", test_string_choices },
	{ "paths resolve against the pipeline folder", test_paths },
	{ "int and float lists", test_lists },
	{ "list of maps", test_list_of_maps },
	{ "map of int lists", test_map_of_lists },
	{ "required keys", test_required },
	{ "unknown keys", test_unknown_keys },
	{ "wrong node kinds", test_node_kinds },
	{ "duplicate keys", test_duplicate_keys },
	{ "positions and tm_params_error", test_positions },
	{ "--set nodes report --set", test_override_position },
	{ "accessors with the wrong type", test_accessors_wrong_type },
	{ "schema checks", test_check_spec },
	{ "type names", test_type_names },
	{ "regression: 'an int' in messages", test_article_before_int },
	{ "regression: MAP value spec is checked", test_check_spec_map_value },
	{ NULL, NULL }
};

int
main(void)
{
	if (tm_test_add_suite("params", cases))
		return 99;
	return tm_test_run();
}
