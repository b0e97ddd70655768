/* onnx — reading model files and TensorProto values.
 *
 * Files are mapped and unpacked by the protoc-c generated code straight
 * from the mapping. A TensorProto holds its values in raw_data
 * (little-endian, onnx.proto), in a typed field (float_data, int32_data for
 * the small integer types, int64_data, double_data, uint64_data) or in an
 * external file (data_location EXTERNAL, keys location/offset/length). */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "import.h"

/* Tensors larger than this many elements are refused: 2^31 floats is 8 GB,
 * beyond any model tmpipe targets, and it keeps size arithmetic in range. */
#define MAX_ELEMS ((size_t)1 << 31)

const char *
onnx_dtype_name(int dtype)
{
	static const char *const names[] = {
		"undefined", "float", "uint8", "int8", "uint16", "int16",
		"int32", "int64", "string", "bool", "float16", "double",
		"uint32", "uint64", "complex64", "complex128", "bfloat16"
	};

	if (dtype >= 0 && dtype < (int)(sizeof names / sizeof names[0]))
		return names[dtype];
	return "unknown";
}

/* Bytes of one element in raw_data, 0 for types tmpipe does not read. */
static size_t
elem_size(int dtype)
{
	switch (dtype) {
	case ONNX_FLOAT: case ONNX_INT32: case 12 /* uint32 */:
		return 4;
	case ONNX_UINT8: case ONNX_INT8: case 9 /* bool */:
		return 1;
	case 4 /* uint16 */: case 5 /* int16 */:
		return 2;
	case ONNX_INT64: case ONNX_DOUBLE: case 13 /* uint64 */:
		return 8;
	default:
		return 0;
	}
}

void
onnx_tensor_fini(onnx_tensor *t)
{
	if (t) {
		free(t->f);
		free(t->i);
		t->f = NULL;
		t->i = NULL;
	}
}

static uint64_t
le(const uint8_t *p, size_t size)
{
	uint64_t v = 0;

	for (size_t k = size; k-- > 0;)
		v = v << 8 | p[k];
	return v;
}

/* One element of little-endian raw bytes into t. */
static void
put_raw(onnx_tensor *t, size_t k, const uint8_t *p)
{
	size_t s = elem_size(t->dtype);
	uint64_t v = le(p, s);

	switch (t->dtype) {
	case ONNX_FLOAT: {
		uint32_t u = (uint32_t)v;
		float f;

		memcpy(&f, &u, sizeof f);
		t->f[k] = f;
		break;
	}
	case ONNX_DOUBLE: {
		double d;

		memcpy(&d, &v, sizeof d);
		t->f[k] = (float)d;
		break;
	}
	case ONNX_INT8:
		t->i[k] = (int8_t)(uint8_t)v;
		break;
	case 5:
		t->i[k] = (int16_t)(uint16_t)v;
		break;
	case ONNX_INT32:
		t->i[k] = (int32_t)(uint32_t)v;
		break;
	case ONNX_INT64:
		t->i[k] = (int64_t)v;
		break;
	default:		/* unsigned types and bool */
		t->i[k] = (int64_t)v;
		break;
	}
}

static const char *
ext_key(const Onnx__TensorProto *tp, const char *key)
{
	for (size_t k = 0; k < tp->n_external_data; k++) {
		const Onnx__StringStringEntryProto *e = tp->external_data[k];

		if (e && e->key && e->value && strcmp(e->key, key) == 0)
			return e->value;
	}
	return NULL;
}

static int
parse_u64(const char *s, uint64_t *v)
{
	char *end;
	unsigned long long x;

	if (!s) {
		*v = 0;
		return 0;
	}
	errno = 0;
	x = strtoull(s, &end, 10);
	if (errno || end == s || *end || *s == '-')
		return -1;
	*v = x;
	return 0;
}

/* Opens the external data of tp and checks that it holds need bytes: the
 * file must resolve inside dir, the model's folder. On success *fd is
 * open at *off and *file is its resolved path (freed by the caller). */
static tm_status
open_external(const Onnx__TensorProto *tp, const char *dir, const char *what,
	      size_t need, int *fdp, uint64_t *offp, char **file,
	      tm_error *err)
{
	const char *loc = ext_key(tp, "location");
	char *rdir = NULL, *rfile = NULL, *path = NULL;
	uint64_t off, len;
	struct stat sb;
	size_t dl;
	int fd = -1;
	tm_status st = TM_OK;

	if (!loc || !*loc)
		return tm_error_set(err, TM_ERR_PARSE,
				    "%s: external data without a location",
				    what);
	if (parse_u64(ext_key(tp, "offset"), &off) ||
	    parse_u64(ext_key(tp, "length"), &len))
		return tm_error_set(err, TM_ERR_PARSE,
				    "%s: external data offset or length is "
				    "not a number", what);
	path = malloc(strlen(dir) + strlen(loc) + 2);
	if (!path)
		return tm_error_set(err, TM_ERR_NOMEM, "out of memory");
	sprintf(path, "%s/%s", dir, loc);
	rdir = realpath(dir, NULL);
	rfile = realpath(path, NULL);
	if (!rdir || !rfile) {
		st = tm_error_set(err, TM_ERR_IO, "%s: external data '%s': %s",
				  what, path, strerror(errno));
		goto out;
	}
	/* ONNX: the location is relative to the model's folder; a path
	 * that leaves it (../, a symlink out) is refused. */
	dl = strlen(rdir);
	if (strncmp(rfile, rdir, dl) != 0 ||
	    (rfile[dl] != '/' && strcmp(rdir, "/") != 0)) {
		st = tm_error_set(err, TM_ERR_INVALID,
				  "%s: external data '%s' resolves to '%s', "
				  "outside the model's folder '%s'; refused",
				  what, loc, rfile, rdir);
		goto out;
	}
	fd = open(rfile, O_RDONLY);
	if (fd < 0 || fstat(fd, &sb) < 0) {
		st = tm_error_set(err, TM_ERR_IO, "%s: %s: %s", what, rfile,
				  strerror(errno));
		goto out;
	}
	if (!ext_key(tp, "length"))
		len = need;
	if (len != need || off > (uint64_t)sb.st_size ||
	    len > (uint64_t)sb.st_size - off) {
		st = tm_error_set(err, TM_ERR_PARSE,
				  "%s: external data '%s' holds %lld bytes "
				  "from offset %llu, the tensor needs %zu",
				  what, rfile, (long long)sb.st_size,
				  (unsigned long long)off, need);
		goto out;
	}
out:
	if (st && fd >= 0)
		close(fd);
	if (st) {
		free(rfile);
	} else {
		*fdp = fd;
		*offp = off;
		*file = rfile;
	}
	free(rdir);
	free(path);
	return st;
}

/* Reads need bytes at off of the file open_external checked into buf. */
static tm_status
read_external(int fd, uint64_t off, const char *file, const char *what,
	      uint8_t *buf, size_t need, tm_error *err)
{
	for (size_t got = 0; got < need;) {
		ssize_t r = pread(fd, buf + got, need - got,
				  (off_t)(off + got));

		if (r <= 0)
			return tm_error_set(err, TM_ERR_IO, "%s: %s: %s", what,
					    file, r ? strerror(errno)
						    : "short read");
		got += (size_t)r;
	}
	return TM_OK;
}

/* How many values the typed field of t's type holds. */
static size_t
typed_count(const Onnx__TensorProto *tp, int dtype)
{
	switch (dtype) {
	case ONNX_FLOAT:
		return tp->n_float_data;
	case ONNX_INT64:
		return tp->n_int64_data;
	case ONNX_DOUBLE:
		return tp->n_double_data;
	case 12: case 13:
		return tp->n_uint64_data;
	default:
		return tp->n_int32_data;
	}
}

/* Values from the typed fields (typed_count(tp) == t->n, checked). */
static void
from_typed(const Onnx__TensorProto *tp, onnx_tensor *t)
{
	for (size_t k = 0; k < t->n; k++) {
		switch (t->dtype) {
		case ONNX_FLOAT:
			t->f[k] = tp->float_data[k];
			break;
		case ONNX_DOUBLE:
			t->f[k] = (float)tp->double_data[k];
			break;
		case ONNX_INT64:
			t->i[k] = tp->int64_data[k];
			break;
		case 12: case 13:
			t->i[k] = (int64_t)tp->uint64_data[k];
			break;
		case ONNX_UINT8:
			t->i[k] = (uint8_t)tp->int32_data[k];
			break;
		case ONNX_INT8:
			t->i[k] = (int8_t)tp->int32_data[k];
			break;
		default:
			t->i[k] = tp->int32_data[k];
			break;
		}
	}
}

tm_status
onnx_tensor_decode(const Onnx__TensorProto *tp, const char *dir,
		   const char *what, onnx_tensor *t, tm_error *err)
{
	int ext = tp->has_data_location &&
		  tp->data_location ==
			  ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL;
	size_t esz, n = 1;
	uint64_t off = 0;
	char *file = NULL;
	int fd = -1;
	tm_status st = TM_OK;

	memset(t, 0, sizeof *t);
	t->dtype = tp->has_data_type ? tp->data_type : 0;
	esz = elem_size(t->dtype);
	if (!esz)
		return tm_error_set(err, TM_ERR_UNSUPPORTED,
				    "%s: data type %s is not supported", what,
				    onnx_dtype_name(t->dtype));
	if (tp->n_dims > TM_MAX_DIMS)
		return tm_error_set(err, TM_ERR_UNSUPPORTED,
				    "%s: %zu dimensions (at most %d)", what,
				    tp->n_dims, TM_MAX_DIMS);
	if (tp->segment)
		return tm_error_set(err, TM_ERR_UNSUPPORTED,
				    "%s: segmented tensors are not supported",
				    what);
	t->ndim = (int)tp->n_dims;
	for (int d = 0; d < t->ndim; d++) {
		if (tp->dims[d] < 0 || (uint64_t)tp->dims[d] > MAX_ELEMS)
			return tm_error_set(err, TM_ERR_PARSE,
					    "%s: dimension %d is %lld", what, d,
					    (long long)tp->dims[d]);
		t->dims[d] = tp->dims[d];
		n *= (size_t)tp->dims[d];
		if (n > MAX_ELEMS)
			return tm_error_set(err, TM_ERR_PARSE,
					    "%s: more than %zu elements", what,
					    MAX_ELEMS);
	}
	t->n = n;
	/* The values the file holds are counted before anything is
	 * allocated: dims alone may ask for 2^31 elements (16 GiB) that a
	 * corrupt or hostile file of a few bytes does not have. */
	if (ext) {
		st = open_external(tp, dir, what, n * esz, &fd, &off, &file,
				   err);
		if (st)
			return st;
	} else if (tp->has_raw_data) {
		if (tp->raw_data.len != n * esz)
			return tm_error_set(err, TM_ERR_PARSE,
					    "%s: raw_data holds %zu bytes, "
					    "shape and type need %zu", what,
					    tp->raw_data.len, n * esz);
	} else if (typed_count(tp, t->dtype) != n) {
		return tm_error_set(err, TM_ERR_PARSE,
				    "%s: %zu values for shape of %zu elements",
				    what, typed_count(tp, t->dtype), n);
	}
	if (t->dtype == ONNX_FLOAT || t->dtype == ONNX_DOUBLE)
		t->f = malloc((n ? n : 1) * sizeof *t->f);
	else
		t->i = malloc((n ? n : 1) * sizeof *t->i);
	if (!t->f && !t->i) {
		st = tm_error_set(err, TM_ERR_NOMEM, "%s: out of memory",
				  what);
		goto out;
	}
	if (ext) {
		uint8_t *buf = malloc(n ? n * esz : 1);

		if (!buf) {
			st = tm_error_set(err, TM_ERR_NOMEM,
					  "%s: out of memory", what);
			goto out;
		}
		st = read_external(fd, off, file, what, buf, n * esz, err);
		for (size_t k = 0; !st && k < n; k++)
			put_raw(t, k, buf + k * esz);
		free(buf);
	} else if (tp->has_raw_data) {
		for (size_t k = 0; k < n; k++)
			put_raw(t, k, tp->raw_data.data + k * esz);
	} else {
		from_typed(tp, t);
	}
out:
	if (fd >= 0)
		close(fd);
	free(file);
	if (st)
		onnx_tensor_fini(t);
	return st;
}

/* Maps path and unpacks it with desc. */
static tm_status
read_message(const char *path, const ProtobufCMessageDescriptor *desc,
	     const char *kind, ProtobufCMessage **out, tm_error *err)
{
	struct stat sb;
	void *map = NULL;
	int fd;

	*out = NULL;
	fd = open(path, O_RDONLY);
	if (fd < 0)
		return tm_error_set(err, TM_ERR_IO, "%s: %s", path,
				    strerror(errno));
	if (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode)) {
		close(fd);
		return tm_error_set(err, TM_ERR_IO, "%s: not a regular file",
				    path);
	}
	if (sb.st_size == 0) {
		close(fd);
		return tm_error_set(err, TM_ERR_PARSE,
				    "%s: empty file, not an ONNX %s", path,
				    kind);
	}
	map = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	close(fd);
	if (map == MAP_FAILED)
		return tm_error_set(err, TM_ERR_IO, "%s: cannot map: %s", path,
				    strerror(errno));
	*out = protobuf_c_message_unpack(desc, NULL, (size_t)sb.st_size,
					 map);
	munmap(map, (size_t)sb.st_size);
	if (!*out)
		return tm_error_set(err, TM_ERR_PARSE,
				    "%s: not a valid ONNX %s (the protobuf "
				    "does not parse: truncated or corrupt?)",
				    path, kind);
	return TM_OK;
}

tm_status
onnx_read_model(const char *path, Onnx__ModelProto **out, tm_error *err)
{
	return read_message(path, &onnx__model_proto__descriptor, "model",
			    (ProtobufCMessage **)out, err);
}

tm_status
onnx_read_tensor(const char *path, Onnx__TensorProto **out, tm_error *err)
{
	return read_message(path, &onnx__tensor_proto__descriptor, "tensor",
			    (ProtobufCMessage **)out, err);
}
