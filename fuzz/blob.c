/* tmpipe fuzzing — .tmb blobs (runtime/src/blob.c): tmrt_blob_ram_size,
 * tmrt_blob_load into that much RAM, then tmrt_run on zero inputs in an
 * arena of the size the model asks for (capped), as a target would.
 *
 * Each input is tried twice: as it is, and with the header's CRC
 * recomputed (when the header's file size lies within the input), so
 * the fuzzer's mutations reach the checks behind the CRC too. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tmrt/model.h>

#include "fuzz.h"

/* Offsets in the header (tmpipe-blob(5)): file size, CRC, and where the
 * CRC starts. */
#define FILE_SIZE_AT 20u
#define CRC_AT 24u
#define CRC_START 28u
/* RAM and arena beyond this are not given: the load or run must then
 * fail with TMRT_ERR_NOSPACE, which is exercised too. */
#define CAP (64u << 20)

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

/* Zero inputs, outputs of their tensors' sizes. */
static int
run(const tmrt_model *m)
{
	int8_t **in = calloc((size_t)m->n_inputs, sizeof *in);
	int8_t **out = calloc((size_t)m->n_outputs, sizeof *out);
	size_t arena_size = m->arena_size < CAP ? m->arena_size : CAP;
	void *arena = calloc(arena_size ? arena_size : 1, 1);
	tmrt_status st = TMRT_ERR_ARG;
	int32_t i;

	if (!in || !out || !arena)
		goto out;
	/* A loaded model passed tmrt_model_check: counts and indices are
	 * valid, every tensor lies within arena_size. */
	for (i = 0; i < m->n_inputs; i++) {
		uint32_t n = m->tensors[m->inputs[i]].size;

		in[i] = calloc(n < CAP ? n : CAP, 1);
		if (!in[i])
			goto out;
	}
	for (i = 0; i < m->n_outputs; i++) {
		uint32_t n = m->tensors[m->outputs[i]].size;

		out[i] = calloc(n < CAP ? n : CAP, 1);
		if (!out[i])
			goto out;
	}
	st = tmrt_run(m, (const int8_t *const *)in, out, arena, arena_size);
	if (st != TMRT_OK &&
	    !(st == TMRT_ERR_NOSPACE && arena_size < m->arena_size)) {
		fprintf(stderr, "fuzz: a loaded blob does not run: %s\n",
			tmrt_status_str(st));
		st = TMRT_ERR_ARG;
	} else {
		st = TMRT_OK;
	}
out:
	for (i = 0; in && i < m->n_inputs; i++)
		free(in[i]);
	for (i = 0; out && i < m->n_outputs; i++)
		free(out[i]);
	free(in);
	free(out);
	free(arena);
	return st != TMRT_OK;
}

/* b: size bytes, aligned as tmrt_blob_load needs. */
static int
load(const uint8_t *b, size_t size, int crc_fixed)
{
	const tmrt_model *m = (const tmrt_model *)1;
	size_t ram_size = 0;
	tmrt_status st_ram, st;
	void *ram;
	int bad = 0;

	st_ram = tmrt_blob_ram_size(b, size, &ram_size);
	if (st_ram != TMRT_OK && ram_size != 0) {
		fprintf(stderr,
			"fuzz: tmrt_blob_ram_size failed (%s) but "
			"reports %zu bytes\n",
			tmrt_status_str(st_ram), ram_size);
		return 1;
	}
	if (ram_size > CAP)
		ram_size = CAP;
	ram = malloc(ram_size ? ram_size : 1);
	if (!ram)
		return 1;
	st = tmrt_blob_load(b, size, ram, ram_size, &m);
	if (st != TMRT_OK && m != NULL) {
		fprintf(stderr,
			"fuzz: tmrt_blob_load failed (%s) but set "
			"the model\n",
			tmrt_status_str(st));
		bad = 1;
	} else if (crc_fixed && st_ram != TMRT_OK && st != st_ram) {
		/* Behind a good CRC both see the same structure. */
		fprintf(stderr,
			"fuzz: tmrt_blob_ram_size says %s, "
			"tmrt_blob_load %s\n",
			tmrt_status_str(st_ram), tmrt_status_str(st));
		bad = 1;
	} else if (st == TMRT_OK) {
		bad = run(m);
	}
	free(ram);
	return bad;
}

int
tm_fuzz_blob(const uint8_t *data, size_t size)
{
	uint8_t *b = NULL;
	uint32_t fs;
	int bad, crc_ok;

	/* The exact size, so ASan sees a read past the end. */
	if (posix_memalign((void **)&b, 16, size ? size : 1))
		return 1;
	if (size)
		memcpy(b, data, size);
	/* fs: the header's file size when it lies within the input. */
	fs = size >= CRC_START ? rd32(b + FILE_SIZE_AT) : 0;
	if (fs < CRC_START || fs > size)
		fs = 0;
	crc_ok = fs && tmrt_crc32(0, b + CRC_START, fs - CRC_START) ==
			       rd32(b + CRC_AT);
	bad = load(b, size, crc_ok);
	if (fs && !crc_ok) {
		wr32(b + CRC_AT, tmrt_crc32(0, b + CRC_START, fs - CRC_START));
		bad |= load(b, size, 1);
	}
	free(b);
	return bad;
}

#ifdef TM_FUZZ_LIBFUZZER
TM_FUZZ_TARGET(tm_fuzz_blob)
#endif
