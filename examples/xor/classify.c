/* XOR on a microcontroller, the way firmware uses tmpipe's output: the
 * header the c_header emitter wrote (examples/xor/pipeline.yaml, prefix
 * "xor") holds the whole model as static const integer tables, so
 * nothing is parsed, allocated or computed at start-up; libtmrt runs it
 * in a static arena of XOR_ARENA_SIZE bytes.
 *
 * Build (see README.md here), the header's folder on the include path:
 *
 *	cc -std=c99 -I out -I <tmpipe>/runtime/include classify.c -ltmrt
 *
 * or name the header with -DXOR_MODEL_HEADER='"path/to/xor_model.h"'.
 *
 * Run: ./classify [a b]  (default 1 0) prints the sigmoid output as int8
 * and as a probability.
 *
 * Input: the model takes int8. A sensor pipeline on a target would
 * deliver int8 already quantized with XOR_INPUT_SCALE and
 * XOR_INPUT_ZERO_POINT; this host demo quantizes two floats from the
 * command line instead (float here is the demo's, not the model's), and
 * dequantizes the output for printing. */
#include <stdio.h>
#include <stdlib.h>

#include <tmrt/model.h>

#ifndef XOR_MODEL_HEADER
#define XOR_MODEL_HEADER "xor_model.h"
#endif
#include XOR_MODEL_HEADER

/* The activations live here: no heap, no stack surprise. */
static int8_t arena[XOR_ARENA_SIZE];

/* q = clamp(round(x / scale) + zero point), round half away from zero. */
static int8_t
quantize(float x, float scale, int zp)
{
	float v = x / scale;
	long q = v >= 0.0f ? (long)(v + 0.5f) : -(long)(-v + 0.5f);

	q += zp;
	return (int8_t)(q < -128 ? -128 : q > 127 ? 127 : q);
}

int
main(int argc, char **argv)
{
	float a = argc > 2 ? strtof(argv[1], NULL) : 1.0f;
	float b = argc > 2 ? strtof(argv[2], NULL) : 0.0f;
	int8_t x[XOR_INPUT_SIZE], y[XOR_OUT_SIZE];
	const int8_t *in[XOR_N_INPUTS];
	int8_t *out[XOR_N_OUTPUTS];
	tmrt_status st;

	x[0] = quantize(a, XOR_INPUT_SCALE, XOR_INPUT_ZERO_POINT);
	x[1] = quantize(b, XOR_INPUT_SCALE, XOR_INPUT_ZERO_POINT);
	in[XOR_INPUT_INDEX] = x;
	out[XOR_OUT_INDEX] = y;
	st = tmrt_run(&xor_model, in, out, arena, sizeof arena);
	if (st != TMRT_OK) {
		fprintf(stderr, "classify: tmrt_run: %s\n",
			tmrt_status_str(st));
		return 1;
	}
	printf("xor(%g, %g): int8 input (%d, %d), output %d = %.3f -> %d\n",
	       (double)a, (double)b, x[0], x[1], y[0],
	       (double)((float)(y[0] - XOR_OUT_ZERO_POINT) * XOR_OUT_SCALE),
	       y[0] >= XOR_OUT_ZERO_POINT + 128 ? 1 : 0);
	return 0;
}
