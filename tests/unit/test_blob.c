/* tmpipe tests — whole models in libtmrt (tmrt_model_check, tmrt_run)
 * and the .tmb blob: the writer (core/blob.c) builds models by hand,
 * tmrt_blob_load loads them, and the runs are compared bit for bit with
 * the writer's host model, with a model written as static C tables (as
 * the c_header emitter writes them) and with the kernels called one by
 * one. Then every way of breaking a blob: each truncation, each bit
 * flip, each structural field (the CRC recomputed so the structural
 * check is what answers), and a seeded mutation loop; run it under
 * ASan (blobs are copied into buffers of their exact size). */
#include "config.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tmpipe/error.h>
#include <tmrt/model.h>
#include <tmrt/tmrt.h>

#include "blob_priv.h"
#include "runner.h"

#define LEN(a) (sizeof(a) / sizeof((a)[0]))
#define ID_MULT 1073741824
#define ID_SHIFT (-1)

/* ---- Random data: a seeded LCG, not rand() ---------------------------- */

static uint32_t lcg;

static void
seed(uint32_t s)
{
	lcg = s;
}

static uint32_t
next_u32(void)
{
	lcg = lcg * 1664525u + 1013904223u;
	return lcg;
}

/* Uniform in [0, n), from the high bits (an LCG's low bits cycle). */
static uint32_t
rnd(uint32_t n)
{
	return (next_u32() >> 8) % n;
}

/* Uniform in [lo, hi], from the high bits. */
static int32_t
rand_in(int32_t lo, int32_t hi)
{
	return lo + (int32_t)((next_u32() >> 8) % (uint32_t)(hi - lo + 1));
}

static void
fill_i8(int8_t *v, size_t n, int lo, int hi)
{
	for (size_t i = 0; i < n; i++)
		v[i] = (int8_t)rand_in(lo, hi);
}

static void
fill_i32(int32_t *v, size_t n, int32_t lo, int32_t hi)
{
	for (size_t i = 0; i < n; i++)
		v[i] = rand_in(lo, hi);
}

static tmrt_tensor
tensor(uint32_t offset, int32_t n, int32_t h, int32_t w, int32_t c,
       int32_t zp)
{
	tmrt_tensor t;

	t.offset = offset;
	t.size = (uint32_t)(n * h * w * c);
	t.dims.n = n;
	t.dims.h = h;
	t.dims.w = w;
	t.dims.c = c;
	t.zp = zp;
	return t;
}

static void
print_err(const tm_error *err)
{
	char buf[2048];

	fprintf(stderr, "\n%s\n", tm_error_format(err, buf, sizeof buf));
}

/* ---- The XOR network of QUANT.md ---------------------------------------- */

static const int8_t fc1_w[8] = { 127, 127, 127, 127, 127, 127, 127, 127 };
static const int32_t fc1_b[4] = { 0, -32385, 0, -32385 };
static const int32_t fc1_m[1] = { 1082196484 }, fc1_s[1] = { 7 };
static const int8_t fc2_w[4] = { 64, -127, 64, -127 };
static const int32_t fc2_b[1] = { -8096 };
static const int32_t fc2_m[1] = { 1082196484 }, fc2_s[1] = { 5 };
/* The sigmoid table from the logit's (4/255, -1) to (1/256, -128). */
static int8_t sigmoid_lut[256];

static const tmrt_fc_params xor_fc1 = { 2, 4, fc1_w, fc1_b, -128, -128,
					fc1_m, fc1_s, 1, -128, 127 };
static const tmrt_fc_params xor_fc2 = { 4, 1, fc2_w, fc2_b, -128, -1,
					fc2_m, fc2_s, 1, -128, 127 };
static const tmrt_lut_params xor_lut = { 1, sigmoid_lut };

/* The same model as static C tables, as the c_header emitter writes it:
 * input [0, 2), hidden [2, 6), logit [0, 1) once the input is dead, and
 * the sigmoid [1, 2) (not in place: the logit is an output too). */
static const tmrt_tensor h_tensors[4] = {
	{ 0, 2, { 1, 1, 1, 2 }, -128 },
	{ 2, 4, { 1, 1, 1, 4 }, -128 },
	{ 0, 1, { 1, 1, 1, 1 }, -1 },
	{ 1, 1, { 1, 1, 1, 1 }, -128 },
};
static const int32_t h_l0_in[1] = { 0 }, h_l1_in[1] = { 1 },
		     h_l2_in[1] = { 2 };
static const tmrt_layer h_layers[3] = {
	{ TMRT_OP_FULLY_CONNECTED, &xor_fc1, h_l0_in, 1, 1 },
	{ TMRT_OP_FULLY_CONNECTED, &xor_fc2, h_l1_in, 1, 2 },
	{ TMRT_OP_LUT, &xor_lut, h_l2_in, 1, 3 },
};
static const int32_t h_in[1] = { 0 }, h_out[2] = { 2, 3 };
static const tmrt_model h_xor = { h_tensors, 4, h_layers, 3, h_in, 1,
				  h_out, 2, 6 };

static void
build_sigmoid(void)
{
	for (int q = -128; q <= 127; q++) {
		double x = 4.0 / 255.0 * (q + 1);
		long v = lround(1.0 / (1.0 + exp(-x)) * 256.0) - 128;

		sigmoid_lut[q + 128] = (int8_t)(v < -128 ? -128
						: v > 127 ? 127 : v);
	}
}

/* The XOR model through the writer; NULL (and a message) on error. */
static tm_priv_blob *
build_xor(void)
{
	static const char *const names[4] = { "input", "hidden", "logit",
					       "out" };
	tm_priv_blob *b;
	tm_error err;
	int32_t idx, in = 0, outs[2] = { 2, 3 }, i;

	tm_error_clear(&err);
	b = tm_priv_blob_new(&err);
	if (!b)
		goto fail;
	for (i = 0; i < 4; i++) {
		if (tm_priv_blob_add_tensor(b, names[i], &h_tensors[i], &idx,
					    &err))
			goto fail;
		CU_ASSERT_EQUAL(idx, i);
	}
	if (tm_priv_blob_add_layer(b, "fc1", TMRT_OP_FULLY_CONNECTED, &xor_fc1,
				   h_l0_in, 1, 1, &err) ||
	    tm_priv_blob_add_layer(b, "fc2", TMRT_OP_FULLY_CONNECTED, &xor_fc2,
				   h_l1_in, 1, 2, &err) ||
	    tm_priv_blob_add_layer(b, "sigmoid", TMRT_OP_LUT, &xor_lut,
				   h_l2_in, 1, 3, &err) ||
	    tm_priv_blob_set_io(b, &in, 1, outs, 2, &err) ||
	    tm_priv_blob_finish(b, &err))
		goto fail;
	return b;
fail:
	print_err(&err);
	CU_FAIL("build_xor");
	tm_priv_blob_free(b);
	return NULL;
}

/* A blob's bytes in a buffer of their exact size (so ASan sees any read
 * past the end) at malloc's alignment. */
static uint8_t *
copy_bytes(const uint8_t *bytes, size_t size)
{
	uint8_t *p = malloc(size ? size : 1);

	if (p && size)
		memcpy(p, bytes, size);
	return p;
}

/* Loads blob[0 ... size) from an exact-size copy with RAM from
 * tmrt_blob_ram_size (or ram_size when not 0); the copy and the RAM are
 * returned for freeing. */
typedef struct loaded {
	uint8_t *blob;
	void *ram;
	const tmrt_model *m;
} loaded;

static tmrt_status
load(const uint8_t *bytes, size_t size, size_t ram_size, loaded *ld)
{
	tmrt_status st;

	ld->blob = copy_bytes(bytes, size);
	ld->ram = NULL;
	ld->m = NULL;
	if (!ram_size) {
		st = tmrt_blob_ram_size(ld->blob, size, &ram_size);
		if (st != TMRT_OK)
			ram_size = 4096;
	}
	ld->ram = malloc(ram_size);
	return tmrt_blob_load(ld->blob, size, ld->ram, ram_size, &ld->m);
}

static void
unload(loaded *ld)
{
	free(ld->blob);
	free(ld->ram);
	ld->blob = NULL;
	ld->ram = NULL;
	ld->m = NULL;
}

/* Runs m with an arena of exactly its size, left uninitialized (so
 * valgrind reports a layer that reads what no layer wrote) or zeroed
 * (for mutated blobs, whose layers may well do that: the runtime checks
 * bounds, not liveness). */
static tmrt_status
run_arena(const tmrt_model *m, const int8_t *const *in, int8_t *const *out,
	  int zeroed)
{
	const size_t n = m->arena_size ? m->arena_size : 1;
	void *arena = zeroed ? calloc(1, n) : malloc(n);
	tmrt_status st = tmrt_run(m, in, out, arena, m->arena_size);

	free(arena);
	return st;
}

static tmrt_status
run(const tmrt_model *m, const int8_t *const *in, int8_t *const *out)
{
	return run_arena(m, in, out, 0);
}

static const int8_t xor_inputs[4][2] = {
	{ -128, -128 }, { -128, 127 }, { 127, -128 }, { 127, 127 }
};

static void
test_crc(void)
{
	static const char check[] = "123456789";

	/* The CRC-32/IEEE check value, whole and in two pieces. */
	CU_ASSERT_EQUAL(tmrt_crc32(0, check, 9), 0xcbf43926u);
	CU_ASSERT_EQUAL(tm_priv_blob_crc32(0, check, 9), 0xcbf43926u);
	CU_ASSERT_EQUAL(tmrt_crc32(tmrt_crc32(0, check, 4), check + 4, 5),
			0xcbf43926u);
	CU_ASSERT_EQUAL(tmrt_crc32(0, check, 0), 0);
	CU_ASSERT_EQUAL(tmrt_crc32(0, "a", 1), 0xe8b7be43u);
}

static void
test_xor_round_trip(void)
{
	tm_priv_blob *b = build_xor();
	static const int8_t logits[4] = { -128, 127, 127, -126 };
	static const int8_t probs[4] = { -97, 98, 98, -96 };
	const uint8_t *bytes;
	size_t size, ram;
	tm_error err;
	loaded ld;

	if (!b)
		return;
	bytes = tm_priv_blob_bytes(b, &size);
	CU_ASSERT_PTR_NOT_NULL_FATAL(bytes);
	CU_ASSERT_EQUAL(size % 16, 0);
	CU_ASSERT_EQUAL(tm_priv_blob_model(b)->arena_size, 6);
	CU_ASSERT_EQUAL(tmrt_blob_ram_size(bytes, size, &ram), TMRT_OK);
	CU_ASSERT(ram > sizeof(tmrt_model));
	CU_ASSERT_EQUAL_FATAL(load(bytes, size, 0, &ld), TMRT_OK);

	/* The three builds are one model, table for table. */
	tm_error_clear(&err);
	CU_ASSERT_EQUAL(tm_priv_blob_model_diff(tm_priv_blob_model(b), ld.m,
						&err),
			TM_OK);
	CU_ASSERT_EQUAL(tm_priv_blob_model_diff(&h_xor, ld.m, &err), TM_OK);
	if (err.code)
		print_err(&err);
	/* In place: the weights are the blob's bytes, not copies. */
	{
		const tmrt_fc_params *p = ld.m->layers[0].params;

		CU_ASSERT((const uint8_t *)p->weights >= ld.blob &&
			  (const uint8_t *)p->weights < ld.blob + size);
		CU_ASSERT_EQUAL(((uintptr_t)p->bias) % 16, 0);
	}

	for (int i = 0; i < 4; i++) {
		int8_t lb = 0, pb = 0, lh = 0, ph = 0, lw = 0, pw = 0;
		const int8_t *in[1] = { xor_inputs[i] };
		int8_t *ob[2] = { &lb, &pb }, *oh[2] = { &lh, &ph },
		       *ow[2] = { &lw, &pw };

		CU_ASSERT_EQUAL(run(ld.m, in, ob), TMRT_OK);
		CU_ASSERT_EQUAL(run(&h_xor, in, oh), TMRT_OK);
		CU_ASSERT_EQUAL(run(tm_priv_blob_model(b), in, ow), TMRT_OK);
		CU_ASSERT_EQUAL(lb, logits[i]);
		CU_ASSERT_EQUAL(pb, probs[i]);
		CU_ASSERT_EQUAL(pb, sigmoid_lut[lb + 128]);
		CU_ASSERT(lb == lh && pb == ph && lb == lw && pb == pw);
	}
	unload(&ld);
	tm_priv_blob_free(b);
}

/* The writer is deterministic: the same model, the same bytes. */
static void
test_deterministic(void)
{
	tm_priv_blob *a = build_xor(), *b = build_xor();
	const uint8_t *x, *y;
	size_t nx, ny;

	if (a && b) {
		x = tm_priv_blob_bytes(a, &nx);
		y = tm_priv_blob_bytes(b, &ny);
		CU_ASSERT(nx == ny && memcmp(x, y, nx) == 0);
		/* fc1 and fc2 share their multiplier array. */
		CU_ASSERT_EQUAL(tm_priv_blob_n_arrays(a), 8);
		CU_ASSERT_EQUAL(
			tm_priv_blob_array_find(
				a, ((const tmrt_fc_params *)tm_priv_blob_model(a)
					    ->layers[1]
					    .params)
					   ->multiplier),
			2);
	}
	tm_priv_blob_free(a);
	tm_priv_blob_free(b);
}

static void
test_diff_messages(void)
{
	tmrt_tensor tensors[4];
	tmrt_layer layers[3];
	tmrt_fc_params fc1 = xor_fc1;
	int8_t w[8];
	tmrt_model m = h_xor;
	tm_error err;

	memcpy(tensors, h_tensors, sizeof tensors);
	memcpy(layers, h_layers, sizeof layers);
	memcpy(w, fc1_w, sizeof w);
	m.tensors = tensors;
	m.layers = layers;
	layers[0].params = &fc1;
	fc1.weights = w;
	tm_error_clear(&err);
	CU_ASSERT_EQUAL(tm_priv_blob_model_diff(&h_xor, &m, &err), TM_OK);
	w[3] = 126;
	CU_ASSERT_EQUAL(tm_priv_blob_model_diff(&h_xor, &m, &err),
			TM_ERR_INVALID);
	CHECK_ERR(&err, "layer 0 (fully_connected): weights[3]: 127 vs 126");
	w[3] = 127;
	fc1.act_max = 100;
	tm_error_clear(&err);
	tm_priv_blob_model_diff(&h_xor, &m, &err);
	CHECK_ERR(&err, "layer 0 (fully_connected): act_max: 127 vs 100");
	fc1.act_max = 127;
	tensors[0].dims.h = 2;		/* [1, 2, 1, 1]: still 2 values */
	tensors[0].dims.c = 1;
	tm_error_clear(&err);
	tm_priv_blob_model_diff(&h_xor, &m, &err);
	CHECK_ERR(&err, "tensor 0: dims.h: 1 vs 2");
	tensors[0] = h_tensors[0];
	m.arena_size = 7;
	tm_error_clear(&err);
	tm_priv_blob_model_diff(&h_xor, &m, &err);
	CHECK_ERR(&err, "model: arena_size: 6 vs 7");
	m.arena_size = 1;
	tm_error_clear(&err);
	tm_priv_blob_model_diff(&h_xor, &m, &err);
	CHECK_ERR(&err, "second model: an offset, size, index or count is "
			"out of bounds");
}

/* ---- A small CNN with every other op ------------------------------------ */

/* Layers, tensors and their arena plan (NHWC, n = 1):
 *   t0 in [6,6,2] @0    tb in [1,1,4] @72
 *   L0  conv 3x3 pad 1, ReLU, per channel  t0 -> t1 [6,6,4] @76
 *   L1  max pool 2x2 / 2                   t1 -> t2 [3,3,4] @220
 *   L2  depthwise 3x3 pad 1                t2 -> t3 [3,3,4] @256
 *   L3  add t3 + t2, in place on t3        -> t4 @256
 *   L4  add t4 + tb (per channel), in place -> t5 @256
 *   L5  avg pool 3x3 pad 1                 t5 -> t6 [3,3,4] @0 (t0 dead)
 *   L6  concat channels (t5, t6)           -> t7 [3,3,8] @76 (t1 dead)
 *   L7  global avg pool                    t7 -> t8 [1,1,8] @0
 *   L8  copy (reshape to [8,1,1]), alias   t8 -> t9 @0
 *   L9  fully connected 8 -> 5             t9 -> t10 [1,1,5] @8
 *   L10 softmax, in place                  t10 -> t11 @8
 *   L11 copy (not an alias)                t11 -> t12 @16
 * outputs t12 and t7; arena 292 bytes. */
enum { N_CNN_TENSORS = 14, N_CNN_LAYERS = 12 };

typedef struct cnn {
	int8_t conv_w[4 * 3 * 3 * 2], dw_w[3 * 3 * 4], fc_w[5 * 8];
	int32_t conv_b[4], conv_m[4], conv_s[4], dw_b[4], dw_m[1], dw_s[1];
	int32_t fc_m[5], fc_s[5], exp_table[256];
	tmrt_conv_params conv, dw;
	tmrt_pool_params maxp, avgp;
	tmrt_add_params add1, add2;
	tmrt_concat_input cat_in[2];
	tmrt_concat_params cat;
	tmrt_global_pool_params gp;
	tmrt_fc_params fc;
	tmrt_softmax_params sm;
	tmrt_tensor t[N_CNN_TENSORS];
} cnn;

/* Tensor indices: t0..t12 as above, tb last. */
#define TB 13

static void
make_cnn(cnn *c)
{
	memset(c, 0, sizeof *c);
	seed(12345);
	fill_i8(c->conv_w, LEN(c->conv_w), -127, 127);
	fill_i8(c->dw_w, LEN(c->dw_w), -127, 127);
	fill_i8(c->fc_w, LEN(c->fc_w), -127, 127);
	fill_i32(c->conv_b, 4, -3000, 3000);
	fill_i32(c->conv_m, 4, 1 << 30, INT32_MAX);
	fill_i32(c->conv_s, 4, 7, 9);
	fill_i32(c->dw_b, 4, -3000, 3000);
	c->dw_m[0] = 1500000000;
	c->dw_s[0] = 8;
	fill_i32(c->fc_m, 5, 1 << 30, INT32_MAX);
	fill_i32(c->fc_s, 5, 6, 8);
	for (int d = 0; d < 256; d++)
		c->exp_table[d] = (int32_t)lround(exp(-d * 0.1) * 1073741824.0);

	c->t[0] = tensor(0, 1, 6, 6, 2, -5);
	c->t[1] = tensor(76, 1, 6, 6, 4, -10);
	c->t[2] = tensor(220, 1, 3, 3, 4, -10);
	c->t[3] = tensor(256, 1, 3, 3, 4, 2);
	c->t[4] = tensor(256, 1, 3, 3, 4, 0);
	c->t[5] = tensor(256, 1, 3, 3, 4, 1);
	c->t[6] = tensor(0, 1, 3, 3, 4, 1);
	c->t[7] = tensor(76, 1, 3, 3, 8, 0);
	c->t[8] = tensor(0, 1, 1, 1, 8, -3);
	c->t[9] = tensor(0, 1, 8, 1, 1, -3);
	c->t[10] = tensor(8, 1, 1, 1, 5, 4);
	c->t[11] = tensor(8, 1, 1, 1, 5, -128);
	c->t[12] = tensor(16, 1, 1, 1, 5, -128);
	c->t[TB] = tensor(72, 1, 1, 1, 4, 3);

	c->conv = (tmrt_conv_params){
		{ 1, 6, 6, 2 }, { 1, 6, 6, 4 }, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1,
		c->conv_w, c->conv_b, -5, -10, c->conv_m, c->conv_s, 4, -10,
		127
	};
	c->maxp = (tmrt_pool_params){ { 1, 6, 6, 4 }, { 1, 3, 3, 4 }, 2, 2, 2,
				      2, 1, 1, 0, 0, 0, 0, 0, -10, -10,
				      ID_MULT, ID_SHIFT, -128, 127 };
	c->dw = (tmrt_conv_params){
		{ 1, 3, 3, 4 }, { 1, 3, 3, 4 }, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 4,
		c->dw_w, c->dw_b, -10, 2, c->dw_m, c->dw_s, 1, -128, 127
	};
	c->add1 = (tmrt_add_params){ 36, 36, 2, -10, 20, 1073741824, 0,
				     1500000000, 1, 1200000000, 19, 0, -128,
				     127 };
	c->add2 = (tmrt_add_params){ 36, 4, 0, 3, 20, 1073741824, 0,
				     1300000000, 1, 1200000000, 19, 1, -128,
				     127 };
	c->avgp = (tmrt_pool_params){ { 1, 3, 3, 4 }, { 1, 3, 3, 4 }, 3, 3, 1,
				      1, 1, 1, 1, 1, 1, 1, 0, 1, 1, ID_MULT,
				      ID_SHIFT, -128, 127 };
	c->cat_in[0] = (tmrt_concat_input){ 4, 1, 1300000000, 0 };
	c->cat_in[1] = (tmrt_concat_input){ 4, 1, ID_MULT, ID_SHIFT };
	c->cat = (tmrt_concat_params){ 9, 1, 2, c->cat_in, 0 };
	c->gp = (tmrt_global_pool_params){ { 1, 3, 3, 8 }, 0, -3, 1400000000,
					   0, -128, 127 };
	c->fc = (tmrt_fc_params){ 8, 5, c->fc_w, NULL, -3, 4, c->fc_m,
				  c->fc_s, 5, -128, 127 };
	c->sm = (tmrt_softmax_params){ 1, 5, 1, c->exp_table, -128 };
}

static tm_priv_blob *
build_cnn(const cnn *c, tm_error *err)
{
	static const int32_t in_l0[1] = { 0 }, in_l1[1] = { 1 },
			     in_l2[1] = { 2 }, in_l3[2] = { 3, 2 },
			     in_l4[2] = { 4, TB }, in_l5[1] = { 5 },
			     in_l6[2] = { 5, 6 }, in_l7[1] = { 7 },
			     in_l8[1] = { 8 }, in_l9[1] = { 9 },
			     in_l10[1] = { 10 }, in_l11[1] = { 11 };
	static const int32_t ins[2] = { 0, TB }, outs[2] = { 12, 7 };
	tm_priv_blob *b = tm_priv_blob_new(err);
	int32_t i;

	if (!b)
		return NULL;
	for (i = 0; i < N_CNN_TENSORS; i++)
		if (tm_priv_blob_add_tensor(b, NULL, &c->t[i], NULL, err))
			goto fail;
	if (tm_priv_blob_add_layer(b, "conv", TMRT_OP_CONV2D, &c->conv, in_l0,
				   1, 1, err) ||
	    tm_priv_blob_add_layer(b, "maxpool", TMRT_OP_MAX_POOL2D, &c->maxp,
				   in_l1, 1, 2, err) ||
	    tm_priv_blob_add_layer(b, "dw", TMRT_OP_DEPTHWISE_CONV2D, &c->dw,
				   in_l2, 1, 3, err) ||
	    tm_priv_blob_add_layer(b, "add1", TMRT_OP_ADD, &c->add1, in_l3, 2,
				   4, err) ||
	    tm_priv_blob_add_layer(b, "add2", TMRT_OP_ADD, &c->add2, in_l4, 2,
				   5, err) ||
	    tm_priv_blob_add_layer(b, "avgpool", TMRT_OP_AVG_POOL2D, &c->avgp,
				   in_l5, 1, 6, err) ||
	    tm_priv_blob_add_layer(b, "cat", TMRT_OP_CONCAT, &c->cat, in_l6, 2,
				   7, err) ||
	    tm_priv_blob_add_layer(b, "gap", TMRT_OP_GLOBAL_AVG_POOL, &c->gp,
				   in_l7, 1, 8, err) ||
	    tm_priv_blob_add_layer(b, "flatten", TMRT_OP_COPY, NULL, in_l8, 1,
				   9, err) ||
	    tm_priv_blob_add_layer(b, "fc", TMRT_OP_FULLY_CONNECTED, &c->fc,
				   in_l9, 1, 10, err) ||
	    tm_priv_blob_add_layer(b, "softmax", TMRT_OP_SOFTMAX, &c->sm,
				   in_l10, 1, 11, err) ||
	    tm_priv_blob_add_layer(b, "copy", TMRT_OP_COPY, NULL, in_l11, 1,
				   12, err) ||
	    tm_priv_blob_set_io(b, ins, 2, outs, 2, err) ||
	    tm_priv_blob_finish(b, err))
		goto fail;
	return b;
fail:
	tm_priv_blob_free(b);
	return NULL;
}

/* The CNN by direct kernel calls, every tensor in its own buffer. */
static void
cnn_reference(const cnn *c, const int8_t *x, const int8_t *xb,
	      int8_t *probs, int8_t *cat)
{
	int8_t t1[144], t2[36], t3[36], t4[36], t5[36], t6[36], t8[8],
		t10[5];
	const int8_t *cin[2] = { t5, t6 };

	CU_ASSERT_EQUAL(tmrt_conv2d_s8(&c->conv, x, t1), TMRT_OK);
	CU_ASSERT_EQUAL(tmrt_max_pool2d_s8(&c->maxp, t1, t2), TMRT_OK);
	CU_ASSERT_EQUAL(tmrt_depthwise_conv2d_s8(&c->dw, t2, t3), TMRT_OK);
	CU_ASSERT_EQUAL(tmrt_add_s8(&c->add1, t3, t2, t4), TMRT_OK);
	CU_ASSERT_EQUAL(tmrt_add_s8(&c->add2, t4, xb, t5), TMRT_OK);
	CU_ASSERT_EQUAL(tmrt_avg_pool2d_s8(&c->avgp, t5, t6), TMRT_OK);
	CU_ASSERT_EQUAL(tmrt_concat_s8(&c->cat, cin, cat), TMRT_OK);
	CU_ASSERT_EQUAL(tmrt_global_avg_pool_s8(&c->gp, cat, t8), TMRT_OK);
	CU_ASSERT_EQUAL(tmrt_fully_connected_s8(&c->fc, t8, t10), TMRT_OK);
	CU_ASSERT_EQUAL(tmrt_softmax_s8(&c->sm, t10, probs), TMRT_OK);
}

static cnn the_cnn;

/* The CNN blob, built once. */
static uint8_t *cnn_bytes;
static size_t cnn_size;

static int
cnn_blob(void)
{
	tm_priv_blob *b;
	tm_error err;

	if (cnn_bytes)
		return 1;
	make_cnn(&the_cnn);
	tm_error_clear(&err);
	b = build_cnn(&the_cnn, &err);
	if (!b) {
		print_err(&err);
		CU_FAIL("build_cnn");
		return 0;
	}
	{
		const uint8_t *bytes = tm_priv_blob_bytes(b, &cnn_size);

		cnn_bytes = copy_bytes(bytes, cnn_size);
	}
	tm_priv_blob_free(b);
	return cnn_bytes != NULL;
}

static void
test_cnn(void)
{
	tm_priv_blob *b;
	tm_error err;
	loaded ld;

	if (!cnn_blob())
		return;
	tm_error_clear(&err);
	b = build_cnn(&the_cnn, &err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(b);
	CU_ASSERT_EQUAL(tm_priv_blob_model(b)->arena_size, 292);
	CU_ASSERT_EQUAL_FATAL(load(cnn_bytes, cnn_size, 0, &ld), TMRT_OK);
	CU_ASSERT_EQUAL(tm_priv_blob_model_diff(tm_priv_blob_model(b), ld.m,
						&err),
			TM_OK);
	seed(777);
	for (int trial = 0; trial < 20; trial++) {
		int8_t x[72], xb[4], ref_p[5], ref_c[72];
		int8_t p1[5], c1[72], p2[5], c2[72];
		const int8_t *in[2] = { x, xb };
		int8_t *o1[2] = { p1, c1 }, *o2[2] = { p2, c2 };

		fill_i8(x, sizeof x, -128, 127);
		fill_i8(xb, sizeof xb, -128, 127);
		cnn_reference(&the_cnn, x, xb, ref_p, ref_c);
		CU_ASSERT_EQUAL(run(ld.m, in, o1), TMRT_OK);
		CU_ASSERT_EQUAL(run(tm_priv_blob_model(b), in, o2), TMRT_OK);
		CU_ASSERT(memcmp(p1, ref_p, 5) == 0);
		CU_ASSERT(memcmp(c1, ref_c, 72) == 0);
		CU_ASSERT(memcmp(p1, p2, 5) == 0 && memcmp(c1, c2, 72) == 0);
	}
	unload(&ld);
	tm_priv_blob_free(b);
}

/* ---- Wide concat (the per-row path) and a batched fully connected ---- */

/* t0 [1,2,1,1] zp 5 and t1 [1,2,1,2] zp -7 concatenated n_cat times,
 * alternately, along channels (outer 2), then a fully connected layer
 * over each of the 2 rows. */
static void
check_wide_concat(int32_t n_cat)
{
	enum { MAXN = 24 };
	tmrt_concat_input q[MAXN];
	tmrt_concat_params cat;
	tmrt_fc_params fc;
	int32_t ins[MAXN], io_in[2] = { 0, 1 }, io_out[2] = { 2, 3 };
	int32_t fc_in[1] = { 2 }, len = 0, k, fm[1] = { 1300000000 },
		fs[1] = { 9 };
	int8_t fw[3 * 3 * MAXN], x0[2], x1[4], ref[2 * 3 * MAXN], got[2 * 3 * MAXN];
	int8_t ref_fc[6], got_fc[6];
	const int8_t *kin[MAXN];
	tm_priv_blob *b;
	tmrt_tensor t;
	tm_error err;
	size_t size;
	loaded ld;

	tm_error_clear(&err);
	seed(99 + (uint32_t)n_cat);
	for (k = 0; k < n_cat; k++) {
		q[k].axis_len = k % 2 ? 2 : 1;
		q[k].zp = k % 2 ? -7 : 5;
		q[k].multiplier = k % 3 ? rand_in(1 << 29, INT32_MAX) : ID_MULT;
		q[k].shift = k % 3 ? rand_in(-1, 2) : ID_SHIFT;
		ins[k] = k % 2;
		len += q[k].axis_len;
	}
	cat = (tmrt_concat_params){ 2, 1, n_cat, q, 5 };
	fill_i8(fw, (size_t)(3 * len), -127, 127);
	fc = (tmrt_fc_params){ len, 3, fw, NULL, 5, 0, fm, fs, 1, -128, 127 };
	b = tm_priv_blob_new(&err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(b);
	t = tensor(0, 1, 2, 1, 1, 5);
	tm_priv_blob_add_tensor(b, "a", &t, NULL, &err);
	t = tensor(2, 1, 2, 1, 2, -7);
	tm_priv_blob_add_tensor(b, "b", &t, NULL, &err);
	t = tensor(6, 1, 2, 1, len, 5);
	tm_priv_blob_add_tensor(b, "cat", &t, NULL, &err);
	t = tensor(6 + 2 * (uint32_t)len, 2, 1, 1, 3, 0);
	tm_priv_blob_add_tensor(b, "fc", &t, NULL, &err);
	tm_priv_blob_add_layer(b, "cat", TMRT_OP_CONCAT, &cat, ins, n_cat, 2,
			       &err);
	tm_priv_blob_add_layer(b, "fc", TMRT_OP_FULLY_CONNECTED, &fc, fc_in, 1,
			       3, &err);
	tm_priv_blob_set_io(b, io_in, 2, io_out, 2, &err);
	if (tm_priv_blob_finish(b, &err)) {
		print_err(&err);
		CU_FAIL("wide concat model");
		tm_priv_blob_free(b);
		return;
	}
	{
		const uint8_t *bytes = tm_priv_blob_bytes(b, &size);

		CU_ASSERT_EQUAL_FATAL(load(bytes, size, 0, &ld), TMRT_OK);
	}
	for (int trial = 0; trial < 5; trial++) {
		const int8_t *in[2] = { x0, x1 };
		int8_t *out[2] = { got, got_fc };

		fill_i8(x0, 2, -128, 127);
		fill_i8(x1, 4, -128, 127);
		for (k = 0; k < n_cat; k++)
			kin[k] = k % 2 ? x1 : x0;
		CU_ASSERT_EQUAL(tmrt_concat_s8(&cat, kin, ref), TMRT_OK);
		CU_ASSERT_EQUAL(tmrt_fully_connected_s8(&fc, ref, ref_fc),
				TMRT_OK);
		CU_ASSERT_EQUAL(tmrt_fully_connected_s8(&fc, ref + len,
							ref_fc + 3),
				TMRT_OK);
		CU_ASSERT_EQUAL(run(ld.m, in, out), TMRT_OK);
		CU_ASSERT(memcmp(got, ref, (size_t)(2 * len)) == 0);
		CU_ASSERT(memcmp(got_fc, ref_fc, 6) == 0);
	}
	unload(&ld);
	tm_priv_blob_free(b);
}

static void
test_wide_concat(void)
{
	check_wide_concat(1);
	check_wide_concat(16);
	check_wide_concat(17);
	check_wide_concat(24);
}

/* ---- tmrt_run and tmrt_model_check on broken tables -------------------- */

typedef struct xor_copy {
	tmrt_tensor t[4];
	tmrt_layer l[3];
	tmrt_fc_params fc1, fc2;
	tmrt_model m;
} xor_copy;

static void
xor_copy_init(xor_copy *x)
{
	memcpy(x->t, h_tensors, sizeof x->t);
	memcpy(x->l, h_layers, sizeof x->l);
	x->fc1 = xor_fc1;
	x->fc2 = xor_fc2;
	x->l[0].params = &x->fc1;
	x->l[1].params = &x->fc2;
	x->m = h_xor;
	x->m.tensors = x->t;
	x->m.layers = x->l;
}

static void
test_run_errors(void)
{
	int8_t arena[64], lo = 55, p = 55;
	const int8_t *in[1] = { xor_inputs[1] }, *in_null[1] = { NULL };
	int8_t *out[2] = { &lo, &p };
	static const int32_t bad_index[1] = { 9 }, two[2] = { 0, 0 };
	xor_copy x;

	CU_ASSERT_EQUAL(tmrt_run(NULL, in, out, arena, sizeof arena),
			TMRT_ERR_ARG);
	CU_ASSERT_EQUAL(tmrt_run(&h_xor, NULL, out, arena, sizeof arena),
			TMRT_ERR_ARG);
	CU_ASSERT_EQUAL(tmrt_run(&h_xor, in_null, out, arena, sizeof arena),
			TMRT_ERR_ARG);
	CU_ASSERT_EQUAL(tmrt_run(&h_xor, in, out, NULL, sizeof arena),
			TMRT_ERR_ARG);
	CU_ASSERT_EQUAL(tmrt_run(&h_xor, in, out, arena, 5),
			TMRT_ERR_NOSPACE);
	CU_ASSERT(lo == 55 && p == 55);	/* nothing written */
	CU_ASSERT_EQUAL(tmrt_run(&h_xor, in, out, arena, 6), TMRT_OK);
	CU_ASSERT(lo == 127 && p == 98);

	/* Each broken table, the status tmrt_model_check names. */
	xor_copy_init(&x);
	CU_ASSERT_EQUAL(tmrt_model_check(&x.m), TMRT_OK);
	x.t[1].offset = 3;		/* past the arena of 6 */
	CU_ASSERT_EQUAL(tmrt_model_check(&x.m), TMRT_ERR_RANGE);
	xor_copy_init(&x);
	x.t[1].dims.c = 5;		/* 5 elements in 4 bytes */
	CU_ASSERT_EQUAL(tmrt_model_check(&x.m), TMRT_ERR_SHAPE);
	xor_copy_init(&x);
	x.l[1].output = 4;
	CU_ASSERT_EQUAL(tmrt_model_check(&x.m), TMRT_ERR_RANGE);
	xor_copy_init(&x);
	x.l[1].inputs = bad_index;
	CU_ASSERT_EQUAL(tmrt_model_check(&x.m), TMRT_ERR_RANGE);
	xor_copy_init(&x);
	x.fc2.in_features = 2;		/* 4 values are 2 rows of 2, but the
					 * output holds 1 */
	CU_ASSERT_EQUAL(tmrt_model_check(&x.m), TMRT_ERR_SHAPE);
	xor_copy_init(&x);
	x.fc2.output_zp = 0;		/* the logit tensor says -1 */
	CU_ASSERT_EQUAL(tmrt_model_check(&x.m), TMRT_ERR_PARAM);
	xor_copy_init(&x);
	x.fc1.weights = NULL;
	CU_ASSERT_EQUAL(tmrt_model_check(&x.m), TMRT_ERR_ARG);
	xor_copy_init(&x);
	x.l[2].op = TMRT_OP_COUNT;
	CU_ASSERT_EQUAL(tmrt_model_check(&x.m), TMRT_ERR_PARAM);
	xor_copy_init(&x);
	x.l[2].op = TMRT_OP_COPY;	/* a copy with a bundle */
	CU_ASSERT_EQUAL(tmrt_model_check(&x.m), TMRT_ERR_PARAM);
	xor_copy_init(&x);
	x.l[0].inputs = two;
	x.l[0].n_inputs = 2;
	CU_ASSERT_EQUAL(tmrt_model_check(&x.m), TMRT_ERR_RANGE);
	xor_copy_init(&x);
	x.t[2].offset = 2;		/* fc2 writing over its own input */
	CU_ASSERT_EQUAL(tmrt_model_check(&x.m), TMRT_ERR_OVERLAP);
	xor_copy_init(&x);
	x.t[3].offset = 0;		/* the LUT in place: allowed */
	CU_ASSERT_EQUAL(tmrt_model_check(&x.m), TMRT_OK);
	x.t[2].offset = 1;		/* fc1 writing over hidden: no */
	x.t[3].offset = 1;
	x.t[1].offset = 1;
	CU_ASSERT_EQUAL(tmrt_model_check(&x.m), TMRT_ERR_OVERLAP);
	xor_copy_init(&x);
	x.m.n_inputs = 0;
	CU_ASSERT_EQUAL(tmrt_model_check(&x.m), TMRT_ERR_RANGE);
	xor_copy_init(&x);
	x.t[0].zp = 200;
	CU_ASSERT_EQUAL(tmrt_model_check(&x.m), TMRT_ERR_PARAM);
	CU_ASSERT_EQUAL(tmrt_run(&x.m, in, out, arena, sizeof arena),
			TMRT_ERR_PARAM);

	CU_ASSERT_STRING_EQUAL(tmrt_status_str(TMRT_ERR_CRC),
			       "blob checksum mismatch");
	CU_ASSERT_STRING_EQUAL(tmrt_status_str((tmrt_status)1000),
			       "unknown status");
}

/* ---- The writer's own errors ------------------------------------------- */

static void
test_writer_errors(void)
{
	tm_priv_blob *b;
	tmrt_tensor t;
	tmrt_fc_params fc = xor_fc1;
	int32_t in0 = 0, in1 = 1, outs[2] = { 2, 3 }, nine = 9;
	tm_error err;

	/* Tensors. */
	b = tm_priv_blob_new(NULL);
	t = h_tensors[1];
	t.size = 3;
	tm_error_clear(&err);
	CU_ASSERT_EQUAL(tm_priv_blob_add_tensor(b, "hidden", &t, NULL, &err),
			TM_ERR_INVALID);
	CHECK_ERR(&err, "tensor 'hidden': dims 1x1x1x4 hold 4 elements, size "
			"is 3");
	t = h_tensors[1];
	t.dims.h = 0;
	tm_error_clear(&err);
	tm_priv_blob_add_tensor(b, NULL, &t, NULL, &err);
	CHECK_ERR(&err, "tensor 0: dims 1x0x1x4 out of range (each >= 1, at "
			"most 2147483647 elements)");
	t = h_tensors[1];
	t.zp = 128;
	tm_error_clear(&err);
	tm_priv_blob_add_tensor(b, NULL, &t, NULL, &err);
	CHECK_ERR(&err, "tensor 0: zero point 128 outside [-128, 127]");

	/* Layers. */
	for (int i = 0; i < 4; i++)
		tm_priv_blob_add_tensor(b, NULL, &h_tensors[i], NULL, NULL);
	tm_error_clear(&err);
	tm_priv_blob_add_layer(b, "fc1", TMRT_OP_FULLY_CONNECTED, &fc, &nine,
			       1, 1, &err);
	CHECK_ERR(&err, "layer 0 'fc1' (fully_connected): input 0 is tensor "
			"9, but 4 tensors were added");
	tm_error_clear(&err);
	tm_priv_blob_add_layer(b, "fc1", TMRT_OP_ADD, &fc, &in0, 1, 1, &err);
	CHECK_ERR(&err, "layer 0 'fc1' (add): 1 inputs given, 2 expected");
	tm_error_clear(&err);
	tm_priv_blob_add_layer(b, NULL, 42, &fc, &in0, 1, 1, &err);
	CHECK_ERR(&err, "layer 0: unknown op 42");
	tm_error_clear(&err);
	tm_priv_blob_add_layer(b, "r", TMRT_OP_COPY, &fc, &in0, 1, 1, &err);
	CHECK_ERR(&err, "layer 0 'r' (copy): takes no bundle");
	fc.weights = NULL;
	tm_error_clear(&err);
	tm_priv_blob_add_layer(b, "fc1", TMRT_OP_FULLY_CONNECTED, &fc, &in0, 1,
			       1, &err);
	CHECK_ERR(&err, "layer 0 'fc1' (fully_connected): weights is NULL");
	fc = xor_fc1;
	fc.n_requant = 3;
	tm_error_clear(&err);
	tm_priv_blob_add_layer(b, "fc1", TMRT_OP_FULLY_CONNECTED, &fc, &in0, 1,
			       1, &err);
	CHECK_ERR(&err, "layer 0 'fc1' (fully_connected): the bundle cannot "
			"size its multiplier (a dimension < 1, groups not "
			"dividing the channels, n_requant neither 1 nor the "
			"channel count, or over 4294967295 elements)");
	/* A failed call took nothing: no stray arrays in the blob. */
	CU_ASSERT_EQUAL(tm_priv_blob_n_arrays(b), 0);

	/* Whole-model errors at finish. */
	tm_error_clear(&err);
	CU_ASSERT_EQUAL(tm_priv_blob_finish(b, &err), TM_ERR_INVALID);
	CHECK_ERR(&err, "the model's inputs and outputs are not set");
	tm_priv_blob_add_layer(b, "fc2", TMRT_OP_FULLY_CONNECTED, &xor_fc2,
			       &in1, 1, 2, NULL);
	tm_priv_blob_set_io(b, &in0, 1, outs, 1, NULL);
	tm_error_clear(&err);
	CU_ASSERT_EQUAL(tm_priv_blob_finish(b, &err), TM_ERR_INVALID);
	CHECK_ERR(&err, "layer 0 'fc2' (fully_connected) reads tensor 1 "
			"before any layer writes it");
	tm_priv_blob_free(b);

	/* The sigmoid in place over the logit, which the caller still
	 * wants: tmrt_model_check allows it, the liveness check does
	 * not. */
	b = tm_priv_blob_new(NULL);
	tm_priv_blob_add_tensor(b, "input", &h_tensors[0], NULL, NULL);
	tm_priv_blob_add_tensor(b, "hidden", &h_tensors[1], NULL, NULL);
	tm_priv_blob_add_tensor(b, "logit", &h_tensors[2], NULL, NULL);
	t = h_tensors[3];
	t.offset = 0;
	tm_priv_blob_add_tensor(b, "out", &t, NULL, NULL);
	tm_priv_blob_add_layer(b, "fc1", TMRT_OP_FULLY_CONNECTED, &xor_fc1,
			       &in0, 1, 1, NULL);
	tm_priv_blob_add_layer(b, "fc2", TMRT_OP_FULLY_CONNECTED, &xor_fc2,
			       &in1, 1, 2, NULL);
	tm_priv_blob_add_layer(b, "sigmoid", TMRT_OP_LUT, &xor_lut, &outs[0],
			       1, 3, NULL);
	tm_priv_blob_set_io(b, &in0, 1, outs, 2, NULL);
	tm_error_clear(&err);
	CU_ASSERT_EQUAL(tm_priv_blob_finish(b, &err), TM_ERR_INVALID);
	CHECK_ERR(&err, "layer 2 'sigmoid' (lut) writes tensor 'out' (arena "
			"bytes 0-0) over tensor 'logit' (bytes 0-0), still "
			"needed by the caller (a model output)");
	CU_ASSERT_PTR_NULL(tm_priv_blob_model(b));
	tm_priv_blob_free(b);

	/* The logit over the input while a later layer reads the input. */
	b = tm_priv_blob_new(NULL);
	tm_priv_blob_add_tensor(b, "input", &h_tensors[0], NULL, NULL);
	tm_priv_blob_add_tensor(b, "hidden", &h_tensors[1], NULL, NULL);
	tm_priv_blob_add_tensor(b, "logit", &h_tensors[2], NULL, NULL);
	tm_priv_blob_add_tensor(b, "out", &h_tensors[3], NULL, NULL);
	tm_priv_blob_add_layer(b, "fc1", TMRT_OP_FULLY_CONNECTED, &xor_fc1,
			       &in0, 1, 1, NULL);
	tm_priv_blob_add_layer(b, "fc2", TMRT_OP_FULLY_CONNECTED, &xor_fc2,
			       &in1, 1, 2, NULL);
	tm_priv_blob_add_layer(b, "again", TMRT_OP_FULLY_CONNECTED, &xor_fc1,
			       &in0, 1, 1, NULL);
	tm_priv_blob_set_io(b, &in0, 1, outs, 2, NULL);
	tm_error_clear(&err);
	CU_ASSERT_EQUAL(tm_priv_blob_finish(b, &err), TM_ERR_INVALID);
	CHECK_ERR(&err, "layer 2 'again' (fully_connected) writes tensor "
			"'hidden', already written by layer 0 'fc1' "
			"(fully_connected)");
	tm_priv_blob_free(b);

	b = tm_priv_blob_new(NULL);
	tm_priv_blob_add_tensor(b, "input", &h_tensors[0], NULL, NULL);
	tm_priv_blob_add_tensor(b, "hidden", &h_tensors[1], NULL, NULL);
	tm_priv_blob_add_tensor(b, "logit", &h_tensors[2], NULL, NULL);
	t = h_tensors[1];
	t.offset = 6;
	tm_priv_blob_add_tensor(b, "hidden2", &t, NULL, NULL);
	tm_priv_blob_add_layer(b, "fc1", TMRT_OP_FULLY_CONNECTED, &xor_fc1,
			       &in0, 1, 1, NULL);
	tm_priv_blob_add_layer(b, "fc2", TMRT_OP_FULLY_CONNECTED, &xor_fc2,
			       &in1, 1, 2, NULL);
	tm_priv_blob_add_layer(b, "fc1b", TMRT_OP_FULLY_CONNECTED, &xor_fc1,
			       &in0, 1, 3, NULL);
	outs[0] = 3;
	tm_priv_blob_set_io(b, &in0, 1, outs, 1, NULL);
	tm_error_clear(&err);
	CU_ASSERT_EQUAL(tm_priv_blob_finish(b, &err), TM_ERR_INVALID);
	CHECK_ERR(&err, "layer 1 'fc2' (fully_connected) writes tensor "
			"'logit' (arena bytes 0-0) over tensor 'input' (bytes "
			"0-1), still needed by layer 2 'fc1b' "
			"(fully_connected)");
	tm_priv_blob_free(b);

	/* A layer tmrt_model_check refuses, named. */
	b = tm_priv_blob_new(NULL);
	for (int i = 0; i < 4; i++)
		tm_priv_blob_add_tensor(b, NULL, &h_tensors[i], NULL, NULL);
	fc = xor_fc2;
	fc.output_zp = 3;
	tm_priv_blob_add_layer(b, "fc1", TMRT_OP_FULLY_CONNECTED, &xor_fc1,
			       &in0, 1, 1, NULL);
	tm_priv_blob_add_layer(b, "fc2", TMRT_OP_FULLY_CONNECTED, &fc, &in1, 1,
			       2, NULL);
	outs[0] = 2;
	tm_priv_blob_set_io(b, &in0, 1, outs, 1, NULL);
	tm_error_clear(&err);
	CU_ASSERT_EQUAL(tm_priv_blob_finish(b, &err), TM_ERR_INVALID);
	CHECK_ERR(&err, "layer 1 'fc2' (fully_connected): a zero point, "
			"range, count or table is invalid");
	tm_priv_blob_free(b);

	b = build_xor();
	tm_error_clear(&err);
	CU_ASSERT_EQUAL(tm_priv_blob_add_tensor(b, NULL, &h_tensors[0], NULL,
						&err),
			TM_ERR_INVALID);
	CHECK_ERR(&err, "the model is finished: nothing can be added");
	tm_priv_blob_free(b);
	tm_priv_blob_free(NULL);
}

/* ---- Broken blobs ---------------------------------------------------------- */

static uint32_t
rd32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static void
wr32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

static void
fix_crc(uint8_t *b)
{
	wr32(b + 24, tm_priv_blob_crc32(0, b + 28, rd32(b + 20) - 28));
}

/* The section-table entry of a kind (1 tensors, 2 layers, 3 io, 4 data). */
static uint8_t *
entry(uint8_t *b, uint32_t kind)
{
	for (uint32_t i = 0; i < rd32(b + 36); i++) {
		uint8_t *e = b + rd32(b + 40) + 16 * i;

		if (rd32(e) == kind)
			return e;
	}
	CU_FAIL("no such section");
	return b + 64;
}

static uint8_t *
section(uint8_t *b, uint32_t kind)
{
	return b + rd32(entry(b, kind) + 4);
}

/* Record k of the layers section. */
static uint8_t *
layer_record(uint8_t *b, int k)
{
	uint8_t *r = section(b, 2);

	while (k-- > 0)
		r += rd32(r + 4);
	return r;
}

/* Word w of layer k's body (after its header and input indices). */
static uint8_t *
body_word(uint8_t *b, int k, int w)
{
	uint8_t *r = layer_record(b, k);

	return r + 16 + 4 * (rd32(r + 8) + (uint32_t)w);
}

/* Loads a tampered copy of the CNN blob (the CRC fixed unless keep_crc)
 * and checks the status; ram_size too, which sees the same structure. */
static void
expect(void (*tamper)(uint8_t *), int keep_crc, tmrt_status want,
       const char *what)
{
	uint8_t *b = copy_bytes(cnn_bytes, cnn_size);
	tmrt_status st, st2;
	size_t ram;
	loaded ld;

	tamper(b);
	if (!keep_crc)
		fix_crc(b);
	st = load(b, cnn_size, 8192, &ld);
	if (st != want)
		fprintf(stderr, "\n%s: got %d (%s), want %d (%s)\n", what,
			(int)st, tmrt_status_str(st), (int)want,
			tmrt_status_str(want));
	CU_ASSERT_EQUAL(st, want);
	CU_ASSERT_PTR_NULL(ld.m);
	/* ram_size skips the CRC and the model checks after parsing. */
	st2 = tmrt_blob_ram_size(b, cnn_size, &ram);
	if (want != TMRT_ERR_CRC && want != TMRT_ERR_SHAPE &&
	    want != TMRT_ERR_PARAM && want != TMRT_ERR_OVERLAP &&
	    !(want == TMRT_ERR_RANGE && st2 == TMRT_OK))
		CU_ASSERT_EQUAL(st2, want);
	unload(&ld);
	free(b);
}

#define TAMPER(name, body)                                                  \
	static void name(uint8_t *b)                                        \
	{                                                                   \
		body;                                                       \
	}

TAMPER(t_magic, b[1] = 'X')
TAMPER(t_big_endian, wr32(b + 8, 0x04030201u))
TAMPER(t_bom, wr32(b + 8, 0))
TAMPER(t_major, b[12] = 2)
TAMPER(t_major0, b[12] = 0)
TAMPER(t_minor, b[14] = 1)
TAMPER(t_header_size, wr32(b + 16, 80))
TAMPER(t_file_size_big, wr32(b + 20, rd32(b + 20) + 16))
TAMPER(t_file_size_odd, wr32(b + 20, rd32(b + 20) - 4))
TAMPER(t_file_size_small, wr32(b + 20, 48))
TAMPER(t_crc, b[24] ^= 1)
TAMPER(t_flags, wr32(b + 28, 1))
TAMPER(t_reserved, b[50] = 1)
TAMPER(t_n_sections_5, wr32(b + 36, 5))
TAMPER(t_n_sections_3, wr32(b + 36, 3))
TAMPER(t_n_sections_huge, wr32(b + 36, 0x10000000))
TAMPER(t_table_misaligned, wr32(b + 40, 72))
TAMPER(t_table_outside, wr32(b + 40, rd32(b + 20)))
TAMPER(t_table_in_header, wr32(b + 40, 32))
TAMPER(t_kind_unknown, wr32(entry(b, 3), 9))
TAMPER(t_kind_twice, wr32(entry(b, 3), 1))
TAMPER(t_sec_misaligned, wr32(entry(b, 2) + 4, rd32(entry(b, 2) + 4) + 4))
TAMPER(t_sec_outside, wr32(entry(b, 4) + 4, rd32(b + 20)))
TAMPER(t_sec_huge, wr32(entry(b, 4) + 8, 0xfffffff0u))
TAMPER(t_sec_in_header, wr32(entry(b, 1) + 4, 48))
TAMPER(t_sec_on_table, wr32(entry(b, 1) + 4, 64))
TAMPER(t_sec_overlap, wr32(entry(b, 4) + 4, rd32(entry(b, 2) + 4)))
TAMPER(t_io_count, wr32(entry(b, 3) + 12, 1))
TAMPER(t_tensors_huge, wr32(entry(b, 1) + 12, 0x7fffffff))
TAMPER(t_tensors_zero, wr32(entry(b, 1) + 12, 0))
TAMPER(t_tensor_past_arena, wr32(section(b, 1) + 32 * 7, 290))
TAMPER(t_tensor_offset_wrap, wr32(section(b, 1) + 32 * 7, 0xffffffc0u))
TAMPER(t_tensor_reserved, wr32(section(b, 1) + 32 * 2 + 28, 1))
TAMPER(t_tensor_dims, wr32(section(b, 1) + 32 * 2 + 20, 5))
TAMPER(t_tensor_zp, wr32(section(b, 1) + 32 * 2 + 24, 200))
TAMPER(t_arena_small, wr32(b + 32, 100))
TAMPER(t_io_huge, wr32(section(b, 3), 0x40000000))
TAMPER(t_io_zero, wr32(section(b, 3) + 4, 0))
TAMPER(t_io_index, wr32(section(b, 3) + 8, 14))
TAMPER(t_layers_huge, wr32(entry(b, 2) + 12, 0x7fffffff))
TAMPER(t_layers_fewer, wr32(entry(b, 2) + 12, 11))
TAMPER(t_layers_more, wr32(entry(b, 2) + 12, 13))
TAMPER(t_op_unknown, wr32(layer_record(b, 0), 99))
TAMPER(t_record_size_huge, wr32(layer_record(b, 0) + 4, 0xfffffff0u))
TAMPER(t_record_size_odd, wr32(layer_record(b, 0) + 4, 6))
TAMPER(t_record_size_short, wr32(layer_record(b, 0) + 4,
				 rd32(layer_record(b, 0) + 4) - 4))
TAMPER(t_n_inputs_conv, wr32(layer_record(b, 0) + 8, 2))
TAMPER(t_n_inputs_concat, wr32(layer_record(b, 6) + 8, 0x40000000))
TAMPER(t_layer_input, wr32(layer_record(b, 1) + 16, 14))
TAMPER(t_layer_output, wr32(layer_record(b, 1) + 12, 0xffffffffu))
TAMPER(t_concat_n, wr32(body_word(b, 6, 2), 3))
/* conv: weights at body word 19, bias 21, multiplier 25. */
TAMPER(t_array_misaligned, wr32(body_word(b, 0, 19), 8))
TAMPER(t_array_outside, wr32(body_word(b, 0, 19),
			    (rd32(entry(b, 4) + 8) + 15) & ~15u))
TAMPER(t_array_huge, wr32(body_word(b, 0, 22), 0x40000000))
TAMPER(t_array_wrap, (wr32(body_word(b, 0, 21), 0xfffffff0u),
		      wr32(body_word(b, 0, 22), 8)))
TAMPER(t_array_short, wr32(body_word(b, 0, 20), 71))
TAMPER(t_array_missing, wr32(body_word(b, 0, 20), 0))
TAMPER(t_bias_count, wr32(body_word(b, 0, 22), 3))
TAMPER(t_null_offset, (wr32(body_word(b, 0, 22), 0),
		       wr32(body_word(b, 0, 21), 16)))
TAMPER(t_requant_count, wr32(body_word(b, 0, 26), 1))
/* softmax (layer 10): the table at body word 3. */
TAMPER(t_table_short, wr32(body_word(b, 10, 4), 255))
TAMPER(t_kernel, wr32(body_word(b, 0, 8), 5))
TAMPER(t_conv_zp, wr32(body_word(b, 0, 23), 7))
TAMPER(t_act, wr32(body_word(b, 0, 30), 200))
TAMPER(t_in_place_bad, wr32(section(b, 1) + 32 * 1, 0))
TAMPER(t_softmax_table, wr32(section(b, 4) +
				     rd32(body_word(b, 10, 3)),
			     0))

static void
test_bad_header(void)
{
	if (!cnn_blob())
		return;
	expect(t_magic, 1, TMRT_ERR_FORMAT, "magic");
	expect(t_big_endian, 1, TMRT_ERR_FORMAT, "big-endian");
	expect(t_bom, 1, TMRT_ERR_FORMAT, "byte order mark");
	expect(t_major, 1, TMRT_ERR_VERSION, "major 2");
	expect(t_major0, 1, TMRT_ERR_VERSION, "major 0");
	expect(t_minor, 1, TMRT_ERR_VERSION, "minor 1");
	expect(t_header_size, 1, TMRT_ERR_FORMAT, "header size");
	expect(t_file_size_big, 1, TMRT_ERR_TRUNCATED, "file size > size");
	expect(t_file_size_odd, 1, TMRT_ERR_FORMAT, "file size % 16");
	expect(t_file_size_small, 1, TMRT_ERR_FORMAT, "file size < 64");
	expect(t_crc, 1, TMRT_ERR_CRC, "crc");
	expect(t_flags, 0, TMRT_ERR_FORMAT, "flags");
	expect(t_reserved, 0, TMRT_ERR_FORMAT, "reserved");
}

static void
test_bad_sections(void)
{
	if (!cnn_blob())
		return;
	expect(t_n_sections_5, 0, TMRT_ERR_FORMAT, "5 sections");
	expect(t_n_sections_3, 0, TMRT_ERR_FORMAT, "3 sections");
	expect(t_n_sections_huge, 0, TMRT_ERR_RANGE, "2^28 sections");
	expect(t_table_misaligned, 0, TMRT_ERR_ALIGN, "table misaligned");
	expect(t_table_outside, 0, TMRT_ERR_RANGE, "table outside");
	expect(t_table_in_header, 0, TMRT_ERR_RANGE, "table in header");
	expect(t_kind_unknown, 0, TMRT_ERR_FORMAT, "unknown kind");
	expect(t_kind_twice, 0, TMRT_ERR_FORMAT, "kind twice");
	expect(t_sec_misaligned, 0, TMRT_ERR_ALIGN, "section misaligned");
	expect(t_sec_outside, 0, TMRT_ERR_RANGE, "section outside");
	expect(t_sec_huge, 0, TMRT_ERR_RANGE, "section huge");
	expect(t_sec_in_header, 0, TMRT_ERR_RANGE, "section in header");
	expect(t_sec_on_table, 0, TMRT_ERR_RANGE, "section on the table");
	expect(t_sec_overlap, 0, TMRT_ERR_RANGE, "sections overlap");
	expect(t_io_count, 0, TMRT_ERR_FORMAT, "io count");
}

static void
test_bad_records(void)
{
	if (!cnn_blob())
		return;
	expect(t_tensors_huge, 0, TMRT_ERR_RANGE, "tensors huge");
	expect(t_tensors_zero, 0, TMRT_ERR_RANGE, "tensors zero");
	expect(t_tensor_past_arena, 0, TMRT_ERR_RANGE, "tensor past arena");
	expect(t_tensor_offset_wrap, 0, TMRT_ERR_RANGE, "tensor wraps");
	expect(t_tensor_reserved, 0, TMRT_ERR_FORMAT, "tensor reserved");
	expect(t_tensor_dims, 0, TMRT_ERR_SHAPE, "tensor dims");
	expect(t_tensor_zp, 0, TMRT_ERR_PARAM, "tensor zp");
	expect(t_arena_small, 0, TMRT_ERR_RANGE, "arena small");
	expect(t_io_huge, 0, TMRT_ERR_RANGE, "io huge");
	expect(t_io_zero, 0, TMRT_ERR_RANGE, "no outputs");
	expect(t_io_index, 0, TMRT_ERR_RANGE, "io index");
	expect(t_layers_huge, 0, TMRT_ERR_RANGE, "layers huge");
	expect(t_layers_fewer, 0, TMRT_ERR_FORMAT, "layers fewer");
	expect(t_layers_more, 0, TMRT_ERR_RANGE, "layers more");
	expect(t_op_unknown, 0, TMRT_ERR_FORMAT, "op unknown");
	expect(t_record_size_huge, 0, TMRT_ERR_RANGE, "record size huge");
	expect(t_record_size_odd, 0, TMRT_ERR_FORMAT, "record size odd");
	expect(t_record_size_short, 0, TMRT_ERR_FORMAT, "record size short");
	expect(t_n_inputs_conv, 0, TMRT_ERR_FORMAT, "conv with 2 inputs");
	expect(t_n_inputs_concat, 0, TMRT_ERR_FORMAT, "concat 2^30 inputs");
	expect(t_layer_input, 0, TMRT_ERR_RANGE, "layer input");
	expect(t_layer_output, 0, TMRT_ERR_RANGE, "layer output");
	expect(t_concat_n, 0, TMRT_ERR_FORMAT, "concat n_inputs");
	expect(t_array_misaligned, 0, TMRT_ERR_ALIGN, "array misaligned");
	expect(t_array_outside, 0, TMRT_ERR_RANGE, "array outside");
	expect(t_array_huge, 0, TMRT_ERR_RANGE, "array huge");
	expect(t_array_wrap, 0, TMRT_ERR_RANGE, "array wraps");
	expect(t_array_short, 0, TMRT_ERR_RANGE, "weights short");
	expect(t_array_missing, 0, TMRT_ERR_RANGE, "weights missing");
	expect(t_bias_count, 0, TMRT_ERR_RANGE, "bias count");
	expect(t_null_offset, 0, TMRT_ERR_FORMAT, "null with offset");
	expect(t_requant_count, 0, TMRT_ERR_RANGE, "requant count");
	expect(t_table_short, 0, TMRT_ERR_RANGE, "table short");
	expect(t_kernel, 0, TMRT_ERR_SHAPE, "kernel");
	expect(t_conv_zp, 0, TMRT_ERR_PARAM, "conv zp");
	expect(t_act, 0, TMRT_ERR_PARAM, "activation range");
	expect(t_in_place_bad, 0, TMRT_ERR_OVERLAP, "conv in place");
	expect(t_softmax_table, 0, TMRT_ERR_PARAM, "softmax exp(0) = 0");
}

static void
test_bad_calls(void)
{
	uint8_t *b, ram[8192];
	const tmrt_model *m = (const tmrt_model *)1;
	size_t need;
	uint8_t *mis;

	if (!cnn_blob())
		return;
	b = copy_bytes(cnn_bytes, cnn_size);
	CU_ASSERT_EQUAL(tmrt_blob_ram_size(b, cnn_size, &need), TMRT_OK);
	CU_ASSERT(need <= sizeof ram);
	CU_ASSERT_EQUAL(tmrt_blob_load(NULL, cnn_size, ram, sizeof ram, &m),
			TMRT_ERR_ARG);
	CU_ASSERT_PTR_NULL(m);
	CU_ASSERT_EQUAL(tmrt_blob_load(b, cnn_size, NULL, sizeof ram, &m),
			TMRT_ERR_ARG);
	CU_ASSERT_EQUAL(tmrt_blob_load(b, cnn_size, ram, sizeof ram, NULL),
			TMRT_ERR_ARG);
	CU_ASSERT_EQUAL(tmrt_blob_ram_size(NULL, cnn_size, &need),
			TMRT_ERR_ARG);
	CU_ASSERT_EQUAL(tmrt_blob_ram_size(b, cnn_size, NULL), TMRT_ERR_ARG);
	CU_ASSERT_EQUAL(tmrt_blob_ram_size(b, cnn_size, &need), TMRT_OK);
	/* Exactly enough RAM at any alignment of ram; one byte less is
	 * not enough (for some alignment). */
	for (size_t a = 0; a < 8; a++) {
		CU_ASSERT_EQUAL(tmrt_blob_load(b, cnn_size, ram + a, need, &m),
				TMRT_OK);
		CU_ASSERT((uint8_t *)m >= ram + a &&
			  (uint8_t *)m < ram + a + need);
	}
	CU_ASSERT_EQUAL(tmrt_blob_load(b, cnn_size, ram, need - 8, &m),
			TMRT_ERR_NOSPACE);
	CU_ASSERT_PTR_NULL(m);
	/* Trailing bytes after file_size are ignored (flash padding). */
	{
		uint8_t *big = malloc(cnn_size + 100);

		memcpy(big, cnn_bytes, cnn_size);
		memset(big + cnn_size, 0xff, 100);
		CU_ASSERT_EQUAL(tmrt_blob_load(big, cnn_size + 100, ram,
					       sizeof ram, &m),
				TMRT_OK);
		free(big);
	}
	/* The blob itself misaligned. */
	mis = malloc(cnn_size + 4);
	memcpy(mis + 2, cnn_bytes, cnn_size);
	CU_ASSERT_EQUAL(tmrt_blob_load(mis + 2, cnn_size, ram, sizeof ram, &m),
			TMRT_ERR_ALIGN);
	free(mis);
	free(b);
}

static void
test_truncated(void)
{
	int bad = 0;

	if (!cnn_blob())
		return;
	for (size_t n = 0; n < cnn_size; n++) {
		loaded ld;
		tmrt_status st = load(cnn_bytes, n, 8192, &ld);
		size_t ram;

		if (st != TMRT_ERR_TRUNCATED ||
		    tmrt_blob_ram_size(ld.blob, n, &ram) != TMRT_ERR_TRUNCATED)
			bad++;
		unload(&ld);
	}
	CU_ASSERT_EQUAL(bad, 0);
}

/* One flipped bit anywhere: the header's checks or the CRC. */
static void
test_bit_flips(void)
{
	int bad = 0;

	if (!cnn_blob())
		return;
	for (size_t i = 0; i < cnn_size; i++) {
		const uint8_t bit = (uint8_t)(1u << (i % 8));
		uint8_t *b = copy_bytes(cnn_bytes, cnn_size);
		const tmrt_model *m;
		uint8_t ram[8192];
		tmrt_status st;

		b[i] ^= bit;
		st = tmrt_blob_load(b, cnn_size, ram, sizeof ram, &m);
		if (i >= 28 || (i >= 24 && i < 28)) {
			bad += st != TMRT_ERR_CRC;
		} else if (i >= 12 && i < 16) {
			bad += st != TMRT_ERR_VERSION;
		} else if (i >= 20 && i < 24) {
			/* file_size: too big, not a multiple of 16, or
			 * smaller (then the CRC covers less). */
			bad += st != TMRT_ERR_TRUNCATED &&
			       st != TMRT_ERR_FORMAT && st != TMRT_ERR_CRC;
		} else {
			bad += st != TMRT_ERR_FORMAT;
		}
		free(b);
	}
	CU_ASSERT_EQUAL(bad, 0);
}

/* Seeded random mutations, with and without a fixed CRC: the loader
 * answers, never crashes (ASan), and what it accepts runs. */
static void
test_fuzz(void)
{
	static const uint32_t special[] = { 0,	       1,	   4,
					    16,	       0x7fffffff, 0x80000000u,
					    0xffffffffu, 0xfffffff0u, 256 };
	int accepted = 0, statuses[TMRT_ERR_OVERLAP + 1] = { 0 };

	if (!cnn_blob())
		return;
	seed(20261127);
	for (int it = 0; it < 4000; it++) {
		uint8_t *b = copy_bytes(cnn_bytes, cnn_size);
		size_t size = cnn_size, ram_size;
		int n = 1 + (int)rnd(4);
		loaded ld;
		tmrt_status st;

		for (int k = 0; k < n; k++) {
			const size_t at = rnd((uint32_t)cnn_size);
			const size_t w = at & ~(size_t)3;

			switch (rnd(9)) {
			case 0:
				b[at] ^= (uint8_t)(1u << rnd(8));
				break;
			case 1:
				b[at] = (uint8_t)next_u32();
				break;
			case 2:
				if (w + 4 <= cnn_size)
					wr32(b + w, special[rnd(LEN(special))]);
				break;
			case 3:
			case 4:
			case 5:
			case 6:
			case 7:
				/* A word nudged: offsets, sizes, counts. */
				if (w + 4 <= cnn_size)
					wr32(b + w, rd32(b + w) + rnd(33) - 16);
				break;
			default:
				size = rnd((uint32_t)cnn_size + 1);
				break;
			}
		}
		/* Mostly past the CRC, to reach the structural checks. */
		if (rnd(4) && size >= 64 && rd32(b + 20) <= size &&
		    rd32(b + 20) >= 28)
			fix_crc(b);
		tmrt_blob_ram_size(b, size, &ram_size);
		st = load(b, size, 8192, &ld);
		free(b);
		if ((unsigned)st <= TMRT_ERR_OVERLAP)
			statuses[st]++;
		if (st == TMRT_OK) {
			int8_t x[72] = { 0 }, xb[4] = { 0 }, p[5], c[72];
			const int8_t *in[2] = { x, xb };
			int8_t *out[2] = { p, c };

			accepted++;
			/* Inputs and outputs sized by the loaded model. */
			if (ld.m->n_inputs == 2 && ld.m->n_outputs == 2 &&
			    ld.m->tensors[ld.m->inputs[0]].size <= 72 &&
			    ld.m->tensors[ld.m->inputs[1]].size <= 4 &&
			    ld.m->tensors[ld.m->outputs[0]].size <= 5 &&
			    ld.m->tensors[ld.m->outputs[1]].size <= 72) {
				run_arena(ld.m, in, out, 1);
			}
		}
		unload(&ld);
	}
	/* Every class was reached, and some mutations (weights) load. */
	CU_ASSERT(accepted > 0);
	for (int s = TMRT_ERR_SHAPE; s <= TMRT_ERR_OVERLAP; s++)
		if (s != TMRT_ERR_OVERLAP && s != TMRT_ERR_NOSPACE &&
		    statuses[s] == 0) {
			fprintf(stderr, "\nfuzz: status %d never seen\n", s);
			CU_FAIL("a status class never reached");
		}
}

static void
test_free_cnn(void)
{
	free(cnn_bytes);
	cnn_bytes = NULL;
}

static const tm_test_case cases[] = {
	{ "crc32 check values", test_crc },
	{ "XOR: writer, blob, static tables agree", test_xor_round_trip },
	{ "writer is deterministic, arrays shared", test_deterministic },
	{ "model diff messages", test_diff_messages },
	{ "CNN: every op through tmrt_run", test_cnn },
	{ "wide concat and batched fully connected", test_wide_concat },
	{ "tmrt_run and tmrt_model_check errors", test_run_errors },
	{ "writer errors", test_writer_errors },
	{ "bad header", test_bad_header },
	{ "bad section table", test_bad_sections },
	{ "bad records", test_bad_records },
	{ "bad calls", test_bad_calls },
	{ "every truncation", test_truncated },
	{ "every bit flip", test_bit_flips },
	{ "seeded mutations", test_fuzz },
	{ "cleanup", test_free_cnn },
	{ NULL, NULL }
};

int
main(void)
{
	build_sigmoid();
	if (tm_test_add_suite("blob", cases))
		return 99;
	return tm_test_run();
}
