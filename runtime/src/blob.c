/* libtmrt — the .tmb blob loader (format: tmpipe-blob(5)). Builds a
 * tmrt_model and its bundles in the caller's RAM, pointing into the
 * blob for the constant arrays (executed in place, nothing copied), after
 * validating every byte it relies on. Freestanding: integers only, no
 * libc; every field is read byte by byte (little-endian), so parsing
 * needs no alignment; every offset + size is summed in 64 bits.
 *
 * Order of the checks (tmpipe-blob(5), VALIDATION): the header, the CRC
 * (tmrt_blob_load only), the section table, each section's records in
 * two passes (one measuring the RAM, one filling it), then
 * tmrt_model_check, then each array's length against its bundle.
 */
#include <stddef.h>
#include <stdint.h>

#include <tmrt/model.h>
#include <tmrt/tmrt.h>

#define HEADER_SIZE 64u
#define SECTION_ENTRY 16u
#define TENSOR_RECORD 32u
#define LAYER_HEADER 16u
#define CRC_START 28u

enum { SEC_TENSORS = 1, SEC_LAYERS, SEC_IO, SEC_DATA, SEC_KINDS };

/* RAM pieces are aligned for the strictest member of the structs built
 * there (pointers, int32). */
#define RAM_ALIGN 8u

static const uint8_t magic[8] = { 0x89, 'T', 'M', 'B', 0x0d, 0x0a, 0x1a,
				  0x0a };

typedef struct section {
	uint32_t offset, size, count;
} section;

typedef struct ctx {
	const uint8_t *b;		/* the blob */
	uint32_t file_size;
	uint32_t arena_size;
	section sec[SEC_KINDS];		/* by kind; [0] unused */
	uint32_t n_tensors, n_layers;
	/* RAM: base is NULL while measuring; used counts either way. */
	uint8_t *base;
	uint64_t used;
	tmrt_model *m;
} ctx;

static uint32_t
rd32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

/* Two's complement without the implementation-defined conversion. */
static int32_t
s32(uint32_t u)
{
	return u <= INT32_MAX ? (int32_t)u
			      : (int32_t)(u - 2147483648u) - INT32_MAX - 1;
}

static int32_t
rds32(const uint8_t *p)
{
	return s32(rd32(p));
}

/* The next size bytes of RAM, aligned; NULL while measuring. */
static void *
take(ctx *c, uint64_t size)
{
	uint8_t *p;

	c->used = (c->used + (RAM_ALIGN - 1)) & ~(uint64_t)(RAM_ALIGN - 1);
	p = c->base ? c->base + (size_t)c->used : NULL;
	c->used += size;
	return p;
}

/* ---- CRC-32/IEEE, a 16-entry table (64 bytes of flash, 2 lookups a
 * byte): about four times the speed of bit by bit, a sixteenth of the
 * usual 1 KiB table. ---- */

static const uint32_t crc_nibble[16] = {
	0x00000000, 0x1db71064, 0x3b6e20c8, 0x26d930ac,
	0x76dc4190, 0x6b6b51f4, 0x4db26158, 0x5005713c,
	0xedb88320, 0xf00f9344, 0xd6d6a3e8, 0xcb61b38c,
	0x9b64c2b0, 0x86d3d2d4, 0xa00ae278, 0xbdbdf21c,
};

uint32_t
tmrt_crc32(uint32_t crc, const void *data, size_t size)
{
	const uint8_t *p = (const uint8_t *)data;
	size_t i;

	if (!p)
		return crc;
	crc = ~crc;
	for (i = 0; i < size; i++) {
		crc ^= p[i];
		crc = (crc >> 4) ^ crc_nibble[crc & 15];
		crc = (crc >> 4) ^ crc_nibble[crc & 15];
	}
	return ~crc;
}

/* ---- Header and section table ---------------------------------------- */

static int
host_little_endian(void)
{
	const uint32_t one = 1;

	return *(const uint8_t *)&one == 1;
}

static tmrt_status
check_header(ctx *c, const uint8_t *b, size_t size, int check_crc)
{
	size_t i, n = size < sizeof magic ? size : sizeof magic;
	uint32_t bom, major, minor;

	/* A prefix of the magic is a truncated blob, anything else is not
	 * a blob at all. */
	for (i = 0; i < n; i++)
		if (b[i] != magic[i])
			return TMRT_ERR_FORMAT;
	if (size < HEADER_SIZE)
		return TMRT_ERR_TRUNCATED;
	bom = rd32(b + 8);
	if (bom != 0x01020304u)
		return TMRT_ERR_FORMAT;	/* 0x04030201: big-endian writer */
	if (!host_little_endian())
		return TMRT_ERR_FORMAT;	/* the int32 arrays are used in place */
	major = (uint32_t)b[12] | (uint32_t)b[13] << 8;
	minor = (uint32_t)b[14] | (uint32_t)b[15] << 8;
	if (major != TMRT_BLOB_VERSION_MAJOR ||
	    minor > TMRT_BLOB_VERSION_MINOR)
		return TMRT_ERR_VERSION;
	if (rd32(b + 16) != HEADER_SIZE)
		return TMRT_ERR_FORMAT;
	c->file_size = rd32(b + 20);
	if (c->file_size < HEADER_SIZE || c->file_size % TMRT_BLOB_ALIGN != 0)
		return TMRT_ERR_FORMAT;
	if (c->file_size > size)
		return TMRT_ERR_TRUNCATED;
	if (((uintptr_t)b & (TMRT_BLOB_MIN_ALIGN - 1)) != 0)
		return TMRT_ERR_ALIGN;
	if (check_crc &&
	    tmrt_crc32(0, b + CRC_START, c->file_size - CRC_START) != rd32(b + 24))
		return TMRT_ERR_CRC;
	/* Flags and the reserved words are zero in version 1.0: a later
	 * minor version that uses them is refused above. */
	if (rd32(b + 28) != 0)
		return TMRT_ERR_FORMAT;
	for (i = 44; i < HEADER_SIZE; i++)
		if (b[i] != 0)
			return TMRT_ERR_FORMAT;
	c->arena_size = rd32(b + 32);
	return TMRT_OK;
}

/* Whether [a, a + as) and [b, b + bs) share a byte (an empty range
 * shares none). */
static int
ranges_overlap(uint64_t a, uint64_t as, uint64_t b, uint64_t bs)
{
	return as > 0 && bs > 0 && a < b + bs && b < a + as;
}

static tmrt_status
check_sections(ctx *c)
{
	const uint8_t *b = c->b;
	const uint32_t n = rd32(b + 36), table = rd32(b + 40);
	uint32_t i, j;

	if (table % TMRT_BLOB_ALIGN != 0)
		return TMRT_ERR_ALIGN;
	if (table < HEADER_SIZE ||
	    (uint64_t)table + (uint64_t)n * SECTION_ENTRY > c->file_size)
		return TMRT_ERR_RANGE;
	/* Version 1.0 has exactly one section of each kind. */
	if (n != SEC_KINDS - 1)
		return TMRT_ERR_FORMAT;
	for (i = 0; i < n; i++) {
		const uint8_t *e = b + table + i * SECTION_ENTRY;
		const uint32_t kind = rd32(e);
		section *s;

		if (kind < SEC_TENSORS || kind >= SEC_KINDS)
			return TMRT_ERR_FORMAT;
		s = &c->sec[kind];
		if (s->offset != 0)
			return TMRT_ERR_FORMAT;	/* a kind twice */
		s->offset = rd32(e + 4);
		s->size = rd32(e + 8);
		s->count = rd32(e + 12);
		if (s->offset % TMRT_BLOB_ALIGN != 0)
			return TMRT_ERR_ALIGN;
		/* Inside the file, clear of the header and the table. */
		if (s->offset < HEADER_SIZE ||
		    (uint64_t)s->offset + s->size > c->file_size ||
		    ranges_overlap(s->offset, s->size, table,
				   (uint64_t)n * SECTION_ENTRY))
			return TMRT_ERR_RANGE;
		if ((kind == SEC_IO || kind == SEC_DATA) && s->count != 0)
			return TMRT_ERR_FORMAT;
	}
	/* One offset of 0 would pass as "unset" above, but offsets are
	 * >= HEADER_SIZE, so every kind was seen exactly once. */
	for (i = SEC_TENSORS; i < SEC_KINDS; i++)
		for (j = i + 1; j < SEC_KINDS; j++)
			if (ranges_overlap(c->sec[i].offset, c->sec[i].size,
					   c->sec[j].offset, c->sec[j].size))
				return TMRT_ERR_RANGE;
	return TMRT_OK;
}

/* ---- Tensors and model inputs/outputs ------------------------------- */

static tmrt_status
read_tensors(ctx *c)
{
	const section *s = &c->sec[SEC_TENSORS];
	tmrt_tensor *t;
	uint32_t i;

	if (s->count < 1 || s->count > INT32_MAX ||
	    (uint64_t)s->count * TENSOR_RECORD != s->size)
		return TMRT_ERR_RANGE;
	c->n_tensors = s->count;
	t = (tmrt_tensor *)take(c, (uint64_t)s->count * sizeof *t);
	for (i = 0; i < s->count; i++) {
		const uint8_t *r = c->b + s->offset + i * TENSOR_RECORD;
		const uint32_t off = rd32(r), sz = rd32(r + 4);

		if ((uint64_t)off + sz > c->arena_size)
			return TMRT_ERR_RANGE;
		if (rd32(r + 28) != 0)
			return TMRT_ERR_FORMAT;
		if (!t)
			continue;
		t[i].offset = off;
		t[i].size = sz;
		t[i].dims.n = rds32(r + 8);
		t[i].dims.h = rds32(r + 12);
		t[i].dims.w = rds32(r + 16);
		t[i].dims.c = rds32(r + 20);
		t[i].zp = rds32(r + 24);
	}
	if (c->m) {
		c->m->tensors = t;
		c->m->n_tensors = (int32_t)s->count;
	}
	return TMRT_OK;
}

/* n tensor indices at p into a new int32 array (NULL while measuring). */
static tmrt_status
read_indices(ctx *c, const uint8_t *p, uint32_t n, const int32_t **out)
{
	int32_t *v = (int32_t *)take(c, (uint64_t)n * sizeof *v);
	uint32_t i;

	for (i = 0; i < n; i++) {
		const uint32_t x = rd32(p + 4 * i);

		if (x >= c->n_tensors)
			return TMRT_ERR_RANGE;
		if (v)
			v[i] = (int32_t)x;
	}
	*out = v;
	return TMRT_OK;
}

static tmrt_status
read_io(ctx *c)
{
	const section *s = &c->sec[SEC_IO];
	const uint8_t *p = c->b + s->offset;
	const int32_t *in, *out;
	uint32_t n_in, n_out;
	tmrt_status st;

	if (s->size < 8)
		return TMRT_ERR_RANGE;
	n_in = rd32(p);
	n_out = rd32(p + 4);
	if (n_in < 1 || n_out < 1 ||
	    8 + 4 * ((uint64_t)n_in + n_out) != s->size)
		return TMRT_ERR_RANGE;
	st = read_indices(c, p + 8, n_in, &in);
	if (st == TMRT_OK)
		st = read_indices(c, p + 8 + 4 * (size_t)n_in, n_out, &out);
	if (st != TMRT_OK || !c->m)
		return st;
	c->m->inputs = in;
	c->m->n_inputs = (int32_t)n_in;
	c->m->outputs = out;
	c->m->n_outputs = (int32_t)n_out;
	return TMRT_OK;
}

/* ---- Layers ------------------------------------------------------------ */

/* Words of each op's body after the record header and the input indices
 * (concat: plus 4 per input). */
static const uint32_t body_words[TMRT_OP_COUNT] = {
	[TMRT_OP_COPY] = 0,
	[TMRT_OP_FULLY_CONNECTED] = 15,
	[TMRT_OP_CONV2D] = 32,
	[TMRT_OP_DEPTHWISE_CONV2D] = 32,
	[TMRT_OP_MAX_POOL2D] = 25,
	[TMRT_OP_AVG_POOL2D] = 25,
	[TMRT_OP_GLOBAL_AVG_POOL] = 10,
	[TMRT_OP_ADD] = 14,
	[TMRT_OP_CONCAT] = 4,
	[TMRT_OP_LUT] = 3,
	[TMRT_OP_SOFTMAX] = 6,
};

/* A word cursor over a record body whose length was checked. */
typedef struct words {
	const uint8_t *p;
} words;

static int32_t
next(words *w)
{
	int32_t v = rds32(w->p);

	w->p += 4;
	return v;
}

/* An array reference (offset into DATA, element count): checked, and
 * resolved to a pointer into the blob. want: the exact count when known
 * from the record alone (tables), else 0. */
static tmrt_status
next_array(ctx *c, words *w, uint32_t elsize, int optional, uint32_t want,
	   const void **ptr)
{
	const section *d = &c->sec[SEC_DATA];
	const uint32_t off = rd32(w->p), n = rd32(w->p + 4);

	w->p += 8;
	*ptr = NULL;
	if (n == 0) {
		if (!optional)
			return TMRT_ERR_RANGE;	/* shorter than any need */
		return off == 0 ? TMRT_OK : TMRT_ERR_FORMAT;
	}
	if (off % TMRT_BLOB_ALIGN != 0)
		return TMRT_ERR_ALIGN;
	if ((uint64_t)off + (uint64_t)n * elsize > d->size)
		return TMRT_ERR_RANGE;
	if (want && n != want)
		return TMRT_ERR_RANGE;
	*ptr = c->b + d->offset + off;
	return TMRT_OK;
}

static void
next_dims(words *w, tmrt_dims *d)
{
	d->n = next(w);
	d->h = next(w);
	d->w = next(w);
	d->c = next(w);
}

/* Each read_<op> below fills the record's bundle p field by field (a
 * whole-struct copy may become a memcpy call). While measuring,
 * read_layer gives the fixed-size readers one scratch bundle: the words
 * are walked all the same, so the arrays are checked in both passes. */

/* The window fields that convolution and pooling bundles share, in
 * record order (a macro: the two bundles are different types). */
#define NEXT_WINDOW(w, p)                                                      \
	do {                                                                   \
		next_dims((w), &(p)->input);                                   \
		next_dims((w), &(p)->output);                                  \
		(p)->kernel_h = next(w);                                       \
		(p)->kernel_w = next(w);                                       \
		(p)->stride_h = next(w);                                       \
		(p)->stride_w = next(w);                                       \
		(p)->dilation_h = next(w);                                     \
		(p)->dilation_w = next(w);                                     \
		(p)->pad_top = next(w);                                        \
		(p)->pad_left = next(w);                                       \
		(p)->pad_bottom = next(w);                                     \
		(p)->pad_right = next(w);                                      \
	} while (0)

/* The quantization that ends pooling and global pooling records. */
#define NEXT_POOL_QUANT(w, p)                                                  \
	do {                                                                   \
		(p)->input_zp = next(w);                                       \
		(p)->output_zp = next(w);                                      \
		(p)->multiplier = next(w);                                     \
		(p)->shift = next(w);                                          \
		(p)->act_min = next(w);                                        \
		(p)->act_max = next(w);                                        \
	} while (0)

/* The weights, bias and requantization that end fully connected and
 * convolution records (the same words in both), into p's fields of
 * those names; st is the status, TMRT_OK unless an array is bad (a
 * macro, like NEXT_WINDOW, so that each reader fills its own bundle
 * with no copy on the stack: this runs on small targets). */
#define NEXT_REQUANT(c, w, p, st)                                              \
	do {                                                                   \
		const void *a_[4];                                             \
                                                                               \
		if (((st) = next_array((c), (w), 1, 0, 0, &a_[0])) !=          \
			    TMRT_OK ||                                         \
		    ((st) = next_array((c), (w), 4, 1, 0, &a_[1])) != TMRT_OK) \
			break;                                                 \
		(p)->input_zp = next(w);                                       \
		(p)->output_zp = next(w);                                      \
		if (((st) = next_array((c), (w), 4, 0, 0, &a_[2])) !=          \
			    TMRT_OK ||                                         \
		    ((st) = next_array((c), (w), 4, 0, 0, &a_[3])) != TMRT_OK) \
			break;                                                 \
		(p)->n_requant = next(w);                                      \
		(p)->act_min = next(w);                                        \
		(p)->act_max = next(w);                                        \
		(p)->weights = (const int8_t *)a_[0];                          \
		(p)->bias = (const int32_t *)a_[1];                            \
		(p)->multiplier = (const int32_t *)a_[2];                      \
		(p)->shift = (const int32_t *)a_[3];                           \
	} while (0)

static tmrt_status
read_fc(ctx *c, words *w, tmrt_fc_params *p)
{
	tmrt_status st;

	p->in_features = next(w);
	p->out_features = next(w);
	NEXT_REQUANT(c, w, p, st);
	return st;
}

static tmrt_status
read_conv(ctx *c, words *w, tmrt_conv_params *p)
{
	tmrt_status st;

	NEXT_WINDOW(w, p);
	p->groups = next(w);
	NEXT_REQUANT(c, w, p, st);
	return st;
}

static void
read_pool(words *w, tmrt_pool_params *p)
{
	NEXT_WINDOW(w, p);
	p->count_include_pad = next(w);
	NEXT_POOL_QUANT(w, p);
}

static void
read_global_pool(words *w, tmrt_global_pool_params *p)
{
	next_dims(w, &p->input);
	NEXT_POOL_QUANT(w, p);
}

static void
read_add(words *w, tmrt_add_params *p)
{
	p->size = next(w);
	p->in2_size = next(w);
	p->input1_zp = next(w);
	p->input2_zp = next(w);
	p->left_shift = next(w);
	p->input1_multiplier = next(w);
	p->input1_shift = next(w);
	p->input2_multiplier = next(w);
	p->input2_shift = next(w);
	p->output_multiplier = next(w);
	p->output_shift = next(w);
	p->output_zp = next(w);
	p->act_min = next(w);
	p->act_max = next(w);
}

/* Concat: the bundle, then its inputs array right after it in RAM. */
static tmrt_status
read_concat(ctx *c, words *w, uint32_t n_inputs, tmrt_concat_params *p)
{
	tmrt_concat_input *in;
	int32_t outer, inner, n, zp;
	uint32_t k;

	outer = next(w);
	inner = next(w);
	n = next(w);
	zp = next(w);
	if (n < 1 || (uint32_t)n != n_inputs)
		return TMRT_ERR_FORMAT;
	in = (tmrt_concat_input *)take(c, (uint64_t)n_inputs * sizeof *in);
	for (k = 0; k < n_inputs; k++) {
		int32_t v[4], i;

		for (i = 0; i < 4; i++)
			v[i] = next(w);
		if (!in)
			continue;
		in[k].axis_len = v[0];
		in[k].zp = v[1];
		in[k].multiplier = v[2];
		in[k].shift = v[3];
	}
	if (!p)
		return TMRT_OK;
	p->outer = outer;
	p->inner = inner;
	p->n_inputs = n;
	p->inputs = in;
	p->output_zp = zp;
	return TMRT_OK;
}

static tmrt_status
read_lut(ctx *c, words *w, tmrt_lut_params *p)
{
	const int32_t size = next(w);
	const void *table;
	tmrt_status st = next_array(c, w, 1, 0, 256, &table);

	if (st != TMRT_OK || !p)
		return st;
	p->size = size;
	p->table = (const int8_t *)table;
	return TMRT_OK;
}

static tmrt_status
read_softmax(ctx *c, words *w, tmrt_softmax_params *p)
{
	int32_t outer, len, inner, zp;
	const void *table;
	tmrt_status st;

	outer = next(w);
	len = next(w);
	inner = next(w);
	st = next_array(c, w, 4, 0, 256, &table);
	zp = next(w);
	if (st != TMRT_OK || !p)
		return st;
	p->outer = outer;
	p->len = len;
	p->inner = inner;
	p->exp_table = (const int32_t *)table;
	p->output_zp = zp;
	return TMRT_OK;
}

/* Size of each op's bundle in RAM (concat's inputs come on top). */
static uint64_t
bundle_size(uint32_t op)
{
	switch (op) {
	case TMRT_OP_FULLY_CONNECTED:
		return sizeof(tmrt_fc_params);
	case TMRT_OP_CONV2D:
	case TMRT_OP_DEPTHWISE_CONV2D:
		return sizeof(tmrt_conv_params);
	case TMRT_OP_MAX_POOL2D:
	case TMRT_OP_AVG_POOL2D:
		return sizeof(tmrt_pool_params);
	case TMRT_OP_GLOBAL_AVG_POOL:
		return sizeof(tmrt_global_pool_params);
	case TMRT_OP_ADD:
		return sizeof(tmrt_add_params);
	case TMRT_OP_CONCAT:
		return sizeof(tmrt_concat_params);
	case TMRT_OP_LUT:
		return sizeof(tmrt_lut_params);
	case TMRT_OP_SOFTMAX:
		return sizeof(tmrt_softmax_params);
	default:
		return 0;
	}
}

/* One layer record at r, at most left bytes; *size gets its length. */
static tmrt_status
read_layer(ctx *c, const uint8_t *r, uint32_t left, tmrt_layer *l,
	   uint32_t *size)
{
	uint32_t op, rsize, n_in, out, want_in;
	const int32_t *inputs;
	tmrt_status st;
	void *p, *fixed;
	/* What the fixed-size readers fill while measuring (p NULL). */
	union {
		tmrt_fc_params fc;
		tmrt_conv_params conv;
		tmrt_pool_params pool;
		tmrt_global_pool_params global_pool;
		tmrt_add_params add;
	} scratch;
	words w;

	if (left < LAYER_HEADER)
		return TMRT_ERR_RANGE;
	op = rd32(r);
	rsize = rd32(r + 4);
	n_in = rd32(r + 8);
	out = rd32(r + 12);
	if (op >= TMRT_OP_COUNT || rsize % 4 != 0)
		return TMRT_ERR_FORMAT;
	if (rsize > left)
		return TMRT_ERR_RANGE;
	want_in = op == TMRT_OP_ADD ? 2 : 1;
	if (op == TMRT_OP_CONCAT ? n_in < 1 : n_in != want_in)
		return TMRT_ERR_FORMAT;
	/* The exact length the op and its inputs imply (64 bits: n_in is
	 * anything the blob says). */
	if ((uint64_t)LAYER_HEADER +
		    4 * ((uint64_t)n_in + body_words[op] +
			 (op == TMRT_OP_CONCAT ? 4 * (uint64_t)n_in : 0)) !=
	    rsize)
		return TMRT_ERR_FORMAT;
	if (out >= c->n_tensors)
		return TMRT_ERR_RANGE;
	st = read_indices(c, r + LAYER_HEADER, n_in, &inputs);
	if (st != TMRT_OK)
		return st;

	w.p = r + LAYER_HEADER + 4 * (size_t)n_in;
	p = op == TMRT_OP_COPY ? NULL : take(c, bundle_size(op));
	fixed = p ? p : (void *)&scratch;
	switch (op) {
	case TMRT_OP_FULLY_CONNECTED:
		st = read_fc(c, &w, (tmrt_fc_params *)fixed);
		break;
	case TMRT_OP_CONV2D:
	case TMRT_OP_DEPTHWISE_CONV2D:
		st = read_conv(c, &w, (tmrt_conv_params *)fixed);
		break;
	case TMRT_OP_MAX_POOL2D:
	case TMRT_OP_AVG_POOL2D:
		read_pool(&w, (tmrt_pool_params *)fixed);
		break;
	case TMRT_OP_GLOBAL_AVG_POOL:
		read_global_pool(&w, (tmrt_global_pool_params *)fixed);
		break;
	case TMRT_OP_ADD:
		read_add(&w, (tmrt_add_params *)fixed);
		break;
	case TMRT_OP_CONCAT:
		st = read_concat(c, &w, n_in, (tmrt_concat_params *)p);
		break;
	case TMRT_OP_LUT:
		st = read_lut(c, &w, (tmrt_lut_params *)p);
		break;
	case TMRT_OP_SOFTMAX:
		st = read_softmax(c, &w, (tmrt_softmax_params *)p);
		break;
	default:
		break;
	}
	if (st != TMRT_OK)
		return st;
	if (l) {
		l->op = (int32_t)op;
		l->params = p;
		l->inputs = inputs;
		l->n_inputs = (int32_t)n_in;
		l->output = (int32_t)out;
	}
	*size = rsize;
	return TMRT_OK;
}

static tmrt_status
read_layers(ctx *c)
{
	const section *s = &c->sec[SEC_LAYERS];
	uint32_t i, pos = 0, rsize;
	tmrt_layer *l;

	/* Each record holds at least its header: a bound on the count
	 * before anything is sized from it. */
	if (s->count > s->size / LAYER_HEADER)
		return TMRT_ERR_RANGE;
	c->n_layers = s->count;
	l = (tmrt_layer *)take(c, (uint64_t)s->count * sizeof *l);
	for (i = 0; i < s->count; i++) {
		tmrt_status st = read_layer(c, c->b + s->offset + pos,
					    s->size - pos, l ? &l[i] : NULL,
					    &rsize);

		if (st != TMRT_OK)
			return st;
		pos += rsize;
	}
	if (pos != s->size)
		return TMRT_ERR_FORMAT;	/* bytes after the last record */
	if (c->m) {
		c->m->layers = l;
		c->m->n_layers = (int32_t)s->count;
	}
	return TMRT_OK;
}

/* ---- Array lengths, once the bundles are known to be sane ---------- */

/* The element count of the array reference at body word `word` of a
 * record with n_in inputs. */
static uint32_t
count_at(const uint8_t *r, uint32_t n_in, uint32_t word)
{
	return rd32(r + LAYER_HEADER + 4 * (n_in + word) + 4);
}

static int
requant_ok(const uint8_t *r, uint32_t n_in, uint32_t wb, uint32_t wm,
	   uint32_t ws, int32_t channels, int32_t n_requant)
{
	const uint32_t nb = count_at(r, n_in, wb);

	return (nb == 0 || nb == (uint32_t)channels) &&
	       count_at(r, n_in, wm) == (uint32_t)n_requant &&
	       count_at(r, n_in, ws) == (uint32_t)n_requant;
}

static tmrt_status
check_lengths(const ctx *c)
{
	const section *s = &c->sec[SEC_LAYERS];
	const tmrt_model *m = c->m;
	uint32_t pos = 0;
	int32_t i;

	for (i = 0; i < m->n_layers; i++) {
		const tmrt_layer *l = &m->layers[i];
		const uint8_t *r = c->b + s->offset + pos;
		const uint32_t n_in = (uint32_t)l->n_inputs;
		uint64_t need;

		pos += rd32(r + 4);
		if (l->op == TMRT_OP_FULLY_CONNECTED) {
			const tmrt_fc_params *p =
				(const tmrt_fc_params *)l->params;

			need = (uint64_t)p->in_features * (uint32_t)p->out_features;
			if (count_at(r, n_in, 2) != need ||
			    !requant_ok(r, n_in, 4, 8, 10, p->out_features,
					p->n_requant))
				return TMRT_ERR_RANGE;
		} else if (l->op == TMRT_OP_CONV2D ||
			   l->op == TMRT_OP_DEPTHWISE_CONV2D) {
			const tmrt_conv_params *p =
				(const tmrt_conv_params *)l->params;

			/* tmrt_model_check bounded this by INT32_MAX. */
			need = (uint64_t)p->kernel_h * (uint32_t)p->kernel_w *
			       (uint32_t)p->output.c;
			if (l->op == TMRT_OP_CONV2D)
				need *= (uint32_t)(p->input.c / p->groups);
			if (count_at(r, n_in, 19) != need ||
			    !requant_ok(r, n_in, 21, 25, 27, p->output.c,
					p->n_requant))
				return TMRT_ERR_RANGE;
		}
	}
	return TMRT_OK;
}

/* ---- Entry points ------------------------------------------------------ */

/* Everything but the model check: the header (with or without the CRC)
 * and every section, measuring (c->base NULL) or building. */
static tmrt_status
parse(ctx *c, int check_crc, size_t size)
{
	tmrt_status st = check_header(c, c->b, size, check_crc);

	if (st == TMRT_OK)
		st = check_sections(c);
	if (st != TMRT_OK)
		return st;
	c->m = (tmrt_model *)take(c, sizeof *c->m);
	if (c->m)
		c->m->arena_size = c->arena_size;
	if ((st = read_tensors(c)) != TMRT_OK ||
	    (st = read_io(c)) != TMRT_OK || (st = read_layers(c)) != TMRT_OK)
		return st;
	return TMRT_OK;
}

static void
ctx_init(ctx *c, const void *blob)
{
	int i;

	c->b = (const uint8_t *)blob;
	c->file_size = 0;
	c->arena_size = 0;
	for (i = 0; i < SEC_KINDS; i++) {
		c->sec[i].offset = 0;
		c->sec[i].size = 0;
		c->sec[i].count = 0;
	}
	c->n_tensors = 0;
	c->n_layers = 0;
	c->base = NULL;
	c->used = 0;
	c->m = NULL;
}

tmrt_status
tmrt_blob_ram_size(const void *blob, size_t size, size_t *ram_size)
{
	tmrt_status st;
	ctx c;

	if (ram_size)
		*ram_size = 0;
	if (!blob || !ram_size)
		return TMRT_ERR_ARG;
	ctx_init(&c, blob);
	st = parse(&c, 0, size);
	if (st != TMRT_OK)
		return st;
	/* Slack to align any ram pointer. */
	c.used += RAM_ALIGN - 1;
	if (c.used > SIZE_MAX)
		return TMRT_ERR_NOSPACE;
	*ram_size = (size_t)c.used;
	return TMRT_OK;
}

tmrt_status
tmrt_blob_load(const void *blob, size_t size, void *ram, size_t ram_size,
	       const tmrt_model **out)
{
	const uintptr_t mis = (uintptr_t)ram & (RAM_ALIGN - 1);
	const size_t pad = mis ? RAM_ALIGN - mis : 0;
	tmrt_status st;
	ctx c;

	if (out)
		*out = NULL;
	if (!blob || !ram || !out)
		return TMRT_ERR_ARG;
	/* Measure (with the CRC: it guards everything after), then
	 * build into ram, aligned. */
	ctx_init(&c, blob);
	st = parse(&c, 1, size);
	if (st != TMRT_OK)
		return st;
	if (ram_size < pad || c.used > ram_size - pad)
		return TMRT_ERR_NOSPACE;
	ctx_init(&c, blob);
	c.base = (uint8_t *)ram + pad;
	st = parse(&c, 0, size);
	if (st == TMRT_OK)
		st = tmrt_model_check(c.m);
	if (st == TMRT_OK)
		st = check_lengths(&c);
	if (st == TMRT_OK)
		*out = c.m;
	return st;
}
