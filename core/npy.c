/* tmpipe — reading NumPy .npy files (see npy.h for the format).
 *
 * A regular file is memory-mapped: rows are converted straight from the
 * map into the caller's buffer, and pages already consumed are given back
 * to the kernel, so streaming a calibration set of any size keeps a small
 * resident set. Pipes and files that cannot be mapped are read with stdio
 * (C order only when streaming). */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <tmpipe/npy.h>

#include "util_priv.h"

#define NPY_MAGIC "\x93NUMPY"
#define NPY_MAGIC_LEN 6
/* numpy itself refuses headers over 10000 bytes by default; a little more
 * room costs nothing and still keeps a hostile length from allocating. */
#define NPY_HEADER_MAX (1024 * 1024)
/* Keys and dtype strings are short ('<f4', 'fortran_order'). */
#define NPY_STR_MAX 64
/* Without a map, dtypes other than float32 are converted through a buffer
 * of this many bytes, so reading needs no memory proportional to the
 * file. */
#define CHUNK_BYTES 4096
/* Room for "(d, d, ...)" with TM_MAX_DIMS 64-bit dimensions. */
#define SHAPE_STR_MAX (TM_MAX_DIMS * 22 + 4)

/* The element types read, each converted to float32. */
typedef enum npy_kind {
	NPY_F4 = 1,
	NPY_F8,
	NPY_I1,
	NPY_U1,
	NPY_I4,
	NPY_I8
} npy_kind;

struct tm_npy_reader {
	FILE *fp;
	char *path;		/* for messages */
	char descr[NPY_STR_MAX];
	npy_kind kind;
	size_t elsize;		/* bytes of one element */
	int fortran;		/* data in Fortran order (ndim >= 2) */
	int ndim;
	int64_t shape[TM_MAX_DIMS];
	size_t numel, rows, row_numel;
	off_t data_off;		/* where row 0 starts */
	size_t next_row;
	/* After a failed read the file position is not that of next_row;
	 * the next read seeks there first (stdio only). */
	int need_seek;
	/* The mapped file (regular files), or NULL. */
	unsigned char *map;
	size_t map_len;
	size_t released;	/* C order: map bytes before this were
				 * given back to the kernel */
	int map_errno;		/* why mmap failed, for messages */
};

enum {
	KEY_DESCR = 1,
	KEY_FORTRAN = 2,
	KEY_SHAPE = 4
};

/* The header dict being parsed: a cursor over its bytes and what has been
 * found so far. */
struct hdr {
	const char *p, *end;
	const char *path;
	tm_error *err;
	unsigned seen;		/* KEY_ bits */
	char descr[NPY_STR_MAX];
	int fortran;
	size_t ndim;		/* may exceed TM_MAX_DIMS; refused later */
	int64_t shape[TM_MAX_DIMS];
};

static tm_status bad_header(struct hdr *h, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static tm_status
bad_header(struct hdr *h, const char *fmt, ...)
{
	char msg[TM_ERROR_MSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	return tm_error_set_at(h->err, TM_ERR_PARSE, h->path, 0, 0,
			       "malformed .npy header: %s", msg);
}

/* Copies s for a message, writing bytes outside printable ASCII as \xNN
 * so a hostile file cannot put control characters on the terminal. */
static const char *
escape(const char *s, char *buf, size_t size)
{
	static const char hex[] = "0123456789abcdef";
	size_t n = 0;

	for (; *s && n + 5 < size; s++) {
		unsigned char c = (unsigned char)*s;

		if (c >= 0x20 && c < 0x7f && c != '\\') {
			buf[n++] = (char)c;
			continue;
		}
		buf[n++] = '\\';
		buf[n++] = 'x';
		buf[n++] = hex[c >> 4];
		buf[n++] = hex[c & 15];
	}
	buf[n] = '\0';
	return buf;
}

/* numpy's spelling: "()", "(3,)", "(4, 2)". */
static const char *
format_shape(int ndim, const int64_t *shape, char *buf, size_t size)
{
	size_t n;

	n = (size_t)snprintf(buf, size, "(");
	for (int i = 0; i < ndim && n < size; i++)
		n += (size_t)snprintf(buf + n, size - n, "%s%lld",
				      i ? ", " : "", (long long)shape[i]);
	if (n < size)
		snprintf(buf + n, size - n, ndim == 1 ? ",)" : ")");
	return buf;
}

static int
is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' ||
	       c == '\v';
}

static void
skip_space(struct hdr *h)
{
	while (h->p < h->end && is_space(*h->p))
		h->p++;
}

static int
at(const struct hdr *h, char c)
{
	return h->p < h->end && *h->p == c;
}

static int
at_digit(const struct hdr *h)
{
	return h->p < h->end && *h->p >= '0' && *h->p <= '9';
}

/* A Python string literal in single or double quotes. Control bytes are
 * refused: a NUL would silently cut the string short ('<f4\0junk'). */
static tm_status
parse_string(struct hdr *h, char *out, size_t size)
{
	char quote = *h->p++;
	size_t n = 0;

	for (;;) {
		char c;

		if (h->p >= h->end)
			return bad_header(h, "unterminated string");
		c = *h->p++;
		if (c == quote)
			break;
		if (c == '\\') {
			if (h->p >= h->end)
				return bad_header(h, "unterminated string");
			c = *h->p++;
		}
		if ((unsigned char)c < 0x20)
			return bad_header(h, "control byte 0x%02x in a string",
					  (unsigned)(unsigned char)c);
		if (n + 1 >= size)
			return bad_header(h, "string longer than %zu bytes",
					  size - 1);
		out[n++] = c;
	}
	out[n] = '\0';
	return TM_OK;
}

static int
is_ident(char c)
{
	return c == '_' || (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
	       (c >= 'A' && c <= 'Z');
}

/* True or False, not followed by more of an identifier (Falsey). */
static int
parse_word(struct hdr *h, const char *word)
{
	size_t n = strlen(word);

	if ((size_t)(h->end - h->p) < n || memcmp(h->p, word, n) != 0)
		return 0;
	if (h->p + n < h->end && is_ident(h->p[n]))
		return 0;
	h->p += n;
	return 1;
}

static tm_status
parse_dim(struct hdr *h)
{
	int64_t v = 0;

	if (at(h, '-'))
		return bad_header(h, "'shape' has a negative dimension");
	if (!at_digit(h))
		return bad_header(h, "'shape' must be a tuple of non-negative "
				  "integers");
	while (at_digit(h)) {
		int d = *h->p++ - '0';

		if (v > (INT64_MAX - d) / 10)
			return bad_header(h, "'shape' has a dimension too "
					  "large for 64 bits");
		v = v * 10 + d;
	}
	/* Python 2's numpy wrote longs as 3L. */
	if (at(h, 'L') || at(h, 'l'))
		h->p++;
	if (h->ndim < TM_MAX_DIMS)
		h->shape[h->ndim] = v;
	h->ndim++;
	return TM_OK;
}

static tm_status
parse_shape(struct hdr *h)
{
	tm_status st;

	if (!at(h, '('))
		return bad_header(h, "'shape' must be a tuple such as (4, 2)");
	h->p++;
	for (;;) {
		skip_space(h);
		if (at(h, ')'))
			break;
		if ((st = parse_dim(h)) != TM_OK)
			return st;
		skip_space(h);
		if (at(h, ',')) {
			h->p++;
			continue;
		}
		if (at(h, ')'))
			break;
		return bad_header(h, "'shape' must be a tuple of non-negative "
				  "integers");
	}
	h->p++;
	return TM_OK;
}

static tm_status
parse_value(struct hdr *h, unsigned key)
{
	switch (key) {
	case KEY_DESCR:
		if (at(h, '['))
			return tm_error_set_at(h->err, TM_ERR_UNSUPPORTED,
					       h->path, 0, 0,
					       "structured dtypes are not "
					       "supported; save each field as "
					       "its own float32 array");
		if (!at(h, '\'') && !at(h, '"'))
			return bad_header(h, "'descr' must be a string such "
					  "as '<f4'");
		return parse_string(h, h->descr, sizeof h->descr);
	case KEY_FORTRAN:
		if (parse_word(h, "True"))
			h->fortran = 1;
		else if (parse_word(h, "False"))
			h->fortran = 0;
		else
			return bad_header(h, "'fortran_order' must be True or "
					  "False");
		return TM_OK;
	default:
		return parse_shape(h);
	}
}

/* One "'key': value" entry. */
static tm_status
parse_entry(struct hdr *h, unsigned *key)
{
	char name[NPY_STR_MAX], esc[4 * NPY_STR_MAX + 1];
	tm_status st;

	if (!at(h, '\'') && !at(h, '"'))
		return bad_header(h, "expected a quoted key or '}'");
	if ((st = parse_string(h, name, sizeof name)) != TM_OK)
		return st;
	escape(name, esc, sizeof esc);
	if (strcmp(name, "descr") == 0)
		*key = KEY_DESCR;
	else if (strcmp(name, "fortran_order") == 0)
		*key = KEY_FORTRAN;
	else if (strcmp(name, "shape") == 0)
		*key = KEY_SHAPE;
	else
		return bad_header(h, "unexpected key '%s' (the keys are "
				  "'descr', 'fortran_order' and 'shape')",
				  esc);
	if (h->seen & *key)
		return bad_header(h, "key '%s' appears twice", esc);
	h->seen |= *key;
	skip_space(h);
	if (!at(h, ':'))
		return bad_header(h, "expected ':' after '%s'", esc);
	h->p++;
	skip_space(h);
	return parse_value(h, *key);
}

static const char *
key_name(unsigned key)
{
	switch (key) {
	case KEY_DESCR:
		return "descr";
	case KEY_FORTRAN:
		return "fortran_order";
	case KEY_SHAPE:
		return "shape";
	default:
		return "?";
	}
}

/* The header is a Python dict literal; only the subset numpy writes (and
 * reasonable hand edits of it: either quotes, any order, any spacing, a
 * trailing comma) is accepted. */
static tm_status
parse_dict(struct hdr *h)
{
	static const unsigned keys[] = { KEY_DESCR, KEY_FORTRAN, KEY_SHAPE };
	tm_status st;
	unsigned key = 0;

	skip_space(h);
	if (!at(h, '{'))
		return bad_header(h, "it is not a dict (no '{')");
	h->p++;
	for (;;) {
		skip_space(h);
		if (at(h, '}'))
			break;
		if ((st = parse_entry(h, &key)) != TM_OK)
			return st;
		skip_space(h);
		if (at(h, ',')) {
			h->p++;
			continue;
		}
		if (at(h, '}'))
			break;
		return bad_header(h, "expected ',' or '}' after the value "
				  "of '%s'", key_name(key));
	}
	h->p++;
	skip_space(h);
	if (h->p != h->end)
		return bad_header(h, "unexpected bytes after the closing '}'");
	for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
		if (!(h->seen & keys[i]))
			return bad_header(h, "missing key '%s'",
					  key_name(keys[i]));
	return TM_OK;
}

/* " (int8)" for '|i1': what numpy calls the dtype, for the message. */
static void
describe_descr(const char *descr, char *buf, size_t size)
{
	const char *s = descr;
	unsigned bytes = 0;
	char kind;

	buf[0] = '\0';
	if (*s == '<' || *s == '>' || *s == '|' || *s == '=')
		s++;
	kind = *s;
	if (!kind)
		return;
	for (s++; *s >= '0' && *s <= '9' && bytes < 1000; s++)
		bytes = bytes * 10 + (unsigned)(*s - '0');
	switch (kind) {
	case 'b':
		snprintf(buf, size, " (bool)");
		break;
	case 'i':
	case 'u':
	case 'f':
	case 'c':
		if (*s || bytes == 0 || bytes >= 1000)
			return;
		snprintf(buf, size, " (%s%u)",
			 kind == 'i' ? "int" : kind == 'u' ? "uint" :
			 kind == 'f' ? "float" : "complex", bytes * 8);
		break;
	case 'O':
		snprintf(buf, size, " (Python objects)");
		break;
	case 'U':
		snprintf(buf, size, " (unicode strings)");
		break;
	case 'S':
	case 'a':
		snprintf(buf, size, " (byte strings)");
		break;
	case 'V':
		snprintf(buf, size, " (raw bytes)");
		break;
	case 'M':
		snprintf(buf, size, " (datetime64)");
		break;
	case 'm':
		snprintf(buf, size, " (timedelta64)");
		break;
	default:
		break;
	}
}


static const struct {
	char kind;
	unsigned bytes;
	npy_kind k;
} dtypes[] = {
	{ 'f', 4, NPY_F4 }, { 'f', 8, NPY_F8 }, { 'i', 1, NPY_I1 },
	{ 'u', 1, NPY_U1 }, { 'i', 4, NPY_I4 }, { 'i', 8, NPY_I8 },
};

#define SUPPORTED_TEXT							\
	"tmpipe reads float32, float64, int8, uint8, int32 and int64, "	\
	"little-endian"

/* Accepts '<f4' '<f8' '<i4' '<i8' and, for one-byte types where byte
 * order means nothing, '|i1' '|u1' (numpy's spelling) as well as '<'
 * '>' '=' before them. Everything else gets a message saying what it is
 * and how to convert it. */
static tm_status
check_dtype(tm_npy_reader *r, const char *descr, tm_error *err)
{
	char esc[4 * NPY_STR_MAX + 1], what[32];
	const char *s = descr;
	char order = 0, kind;
	unsigned bytes = 0;
	int digits = 0;

	if (*s == '<' || *s == '>' || *s == '|' || *s == '=')
		order = *s++;
	kind = *s;
	if (kind)
		s++;
	for (; *s >= '0' && *s <= '9' && bytes < 1000; s++, digits++)
		bytes = bytes * 10 + (unsigned)(*s - '0');
	escape(descr, esc, sizeof esc);
	if (kind == 'O')
		return tm_error_set_at(err, TM_ERR_UNSUPPORTED, r->path, 0, 0,
				       "arrays of Python objects ('%s') are "
				       "not supported (reading them needs "
				       "pickle); save a numeric array, e.g. "
				       "arr.astype('<f4')", esc);
	for (size_t i = 0; order && !*s && digits &&
			   i < sizeof dtypes / sizeof dtypes[0]; i++) {
		if (dtypes[i].kind != kind || dtypes[i].bytes != bytes)
			continue;
		if (bytes > 1 && order == '>')
			return tm_error_set_at(err, TM_ERR_UNSUPPORTED,
					       r->path, 0, 0,
					       "big-endian data ('%s') is not "
					       "supported; convert with "
					       "arr.astype('<%c%u')", esc,
					       kind, bytes);
		if (bytes > 1 && order != '<')
			return tm_error_set_at(err, TM_ERR_UNSUPPORTED,
					       r->path, 0, 0,
					       "dtype '%s' does not say its "
					       "byte order; numpy writes "
					       "'<%c%u' for little-endian data",
					       esc, kind, bytes);
		r->kind = dtypes[i].k;
		r->elsize = bytes;
		return TM_OK;
	}
	describe_descr(descr, what, sizeof what);
	return tm_error_set_at(err, TM_ERR_UNSUPPORTED, r->path, 0, 0,
			       "unsupported dtype '%s'%s; " SUPPORTED_TEXT
			       "; convert with arr.astype('<f4')", esc, what);
}

/* Sets numel, rows and row_numel, refusing a shape whose byte size does
 * not fit in size_t or off_t. Zero dimensions are skipped in the product
 * so that (0, 2^62) is refused too: its rows would be absurd buffers. */
static tm_status
check_shape(tm_npy_reader *r, tm_error *err)
{
	uint64_t limit = SIZE_MAX < INT64_MAX ? SIZE_MAX : INT64_MAX;
	uint64_t bytes = r->elsize;
	char sh[SHAPE_STR_MAX];

	/* The float32 buffers callers allocate must fit too. */
	if (bytes < sizeof(float))
		bytes = sizeof(float);
	for (int i = 0; i < r->ndim; i++) {
		uint64_t d = (uint64_t)r->shape[i];

		if (d && bytes > limit / d)
			return tm_error_set_at(err, TM_ERR_PARSE, r->path, 0,
					       0, "shape %s is too large "
					       "(its byte size overflows)",
					       format_shape(r->ndim, r->shape,
							    sh, sizeof sh));
		if (d)
			bytes *= d;
	}
	r->numel = 1;
	r->row_numel = 1;
	r->rows = 1;
	for (int i = 0; i < r->ndim; i++) {
		r->numel *= (size_t)r->shape[i];
		if (i > 0)
			r->row_numel *= (size_t)r->shape[i];
	}
	if (r->ndim > 0)
		r->rows = (size_t)r->shape[0];
	return TM_OK;
}

static tm_status
read_header(tm_npy_reader *r, tm_error *err)
{
	unsigned char pre[12];
	struct hdr h;
	char *buf = NULL;
	size_t n, pre_len, hlen;
	unsigned major, minor;
	tm_status st;

	n = fread(pre, 1, 8, r->fp);
	if (n < 8 && ferror(r->fp))
		return tm_error_set_at(err, TM_ERR_IO, r->path, 0, 0,
				       "read error: %s", strerror(errno));
	if (n == 0)
		return tm_error_set_at(err, TM_ERR_PARSE, r->path, 0, 0,
				       "not a .npy file (it is empty)");
	if (memcmp(pre, NPY_MAGIC, n < NPY_MAGIC_LEN ? n : NPY_MAGIC_LEN)) {
		if (n >= 4 && memcmp(pre, "PK\x03\x04", 4) == 0)
			return tm_error_set_at(err, TM_ERR_PARSE, r->path, 0,
					       0, "not a .npy file (it looks "
					       "like a .npz archive; save "
					       "each array with numpy.save)");
		return tm_error_set_at(err, TM_ERR_PARSE, r->path, 0, 0,
				       "not a .npy file (it does not start "
				       "with \\x93NUMPY)");
	}
	if (n < 8)
		return tm_error_set_at(err, TM_ERR_PARSE, r->path, 0, 0,
				       "truncated header: the file ends "
				       "after %zu bytes", n);
	major = pre[6];
	minor = pre[7];
	if (major < 1 || major > 3 || minor != 0)
		return tm_error_set_at(err, TM_ERR_UNSUPPORTED, r->path, 0, 0,
				       ".npy format version %u.%u is not "
				       "supported (only 1.0, 2.0 and 3.0)",
				       major, minor);
	pre_len = major == 1 ? 10 : 12;
	n = fread(pre + 8, 1, pre_len - 8, r->fp);
	if (n < pre_len - 8 && ferror(r->fp))
		return tm_error_set_at(err, TM_ERR_IO, r->path, 0, 0,
				       "read error: %s", strerror(errno));
	if (n < pre_len - 8)
		return tm_error_set_at(err, TM_ERR_PARSE, r->path, 0, 0,
				       "truncated header: the file ends "
				       "after %zu bytes", 8 + n);
	hlen = (size_t)pre[8] | (size_t)pre[9] << 8;
	if (major > 1)
		hlen |= (size_t)pre[10] << 16 | (size_t)pre[11] << 24;
	if (hlen > NPY_HEADER_MAX)
		return tm_error_set_at(err, TM_ERR_PARSE, r->path, 0, 0,
				       "header of %zu bytes is too large "
				       "(at most %d)", hlen, NPY_HEADER_MAX);

	buf = malloc(hlen ? hlen : 1);
	if (!buf)
		return tm_error_set_at(err, TM_ERR_NOMEM, r->path, 0, 0,
				       "out of memory for the header");
	n = fread(buf, 1, hlen, r->fp);
	if (n < hlen && ferror(r->fp)) {
		st = tm_error_set_at(err, TM_ERR_IO, r->path, 0, 0,
				     "read error: %s", strerror(errno));
		goto fail;
	}
	if (n < hlen) {
		st = tm_error_set_at(err, TM_ERR_PARSE, r->path, 0, 0,
				     "truncated header: the file ends after "
				     "%zu bytes, the header needs %zu",
				     pre_len + n, pre_len + hlen);
		goto fail;
	}

	memset(&h, 0, sizeof h);
	h.p = buf;
	h.end = buf + hlen;
	h.path = r->path;
	h.err = err;
	if ((st = parse_dict(&h)) != TM_OK)
		goto fail;
	free(buf);
	buf = NULL;

	/* What is refused first: the dtype, as it is what users most
	 * often get wrong. */
	memcpy(r->descr, h.descr, sizeof r->descr);
	if ((st = check_dtype(r, h.descr, err)) != TM_OK)
		return st;
	if (h.ndim > TM_MAX_DIMS)
		return tm_error_set_at(err, TM_ERR_UNSUPPORTED, r->path, 0, 0,
				       "arrays with %zu dimensions are not "
				       "supported (at most %d)",
				       h.ndim, TM_MAX_DIMS);
	r->ndim = (int)h.ndim;
	/* With fewer than two dimensions both orders are the same. */
	r->fortran = h.fortran && r->ndim >= 2;
	memcpy(r->shape, h.shape, sizeof r->shape);
	r->data_off = (off_t)(pre_len + hlen);
	return check_shape(r, err);

fail:
	free(buf);
	return st;
}

static uint64_t
data_bytes(const tm_npy_reader *r)
{
	return (uint64_t)r->numel * r->elsize;
}

/* A truncated file is refused here, before any row is read, so a long
 * calibration run cannot fail at its last batch. Pipes and devices have
 * no size; their reads report a short file instead. */
static tm_status
check_size(tm_npy_reader *r, const struct stat *sb, tm_error *err)
{
	uint64_t need = data_bytes(r);
	long long have;
	char sh[SHAPE_STR_MAX], esc[4 * NPY_STR_MAX + 1];

	if (!S_ISREG(sb->st_mode))
		return TM_OK;
	have = sb->st_size > r->data_off ?
	       (long long)(sb->st_size - r->data_off) : 0;
	if ((uint64_t)have >= need)
		return TM_OK;
	return tm_error_set_at(err, TM_ERR_PARSE, r->path, 0, 0,
			       "file holds %lld bytes of data, shape %s of "
			       "'%s' needs %llu", have,
			       format_shape(r->ndim, r->shape, sh, sizeof sh),
			       escape(r->descr, esc, sizeof esc),
			       (unsigned long long)need);
}

/* Maps header and data of a regular file. A failure is not an error:
 * the reader falls back to stdio, and remembers why for messages. */
static void
try_map(tm_npy_reader *r, const struct stat *sb)
{
	uint64_t len = (uint64_t)r->data_off + data_bytes(r);
	void *p;

	if (!S_ISREG(sb->st_mode) || data_bytes(r) == 0)
		return;
	if (len > SIZE_MAX) {
		r->map_errno = EFBIG;
		return;
	}
	p = mmap(NULL, (size_t)len, PROT_READ, MAP_PRIVATE, fileno(r->fp), 0);
	if (p == MAP_FAILED) {
		r->map_errno = errno;
		return;
	}
	r->map = p;
	r->map_len = (size_t)len;
	/* C order is read front to back; Fortran order jumps around. */
	posix_madvise(p, r->map_len, r->fortran ? POSIX_MADV_RANDOM
						 : POSIX_MADV_SEQUENTIAL);
}

/* for_load: the whole array is read at once, so Fortran order can be
 * transposed in memory even when the file cannot be mapped. */
static tm_status
reader_open(const char *path, int for_load, tm_npy_reader **out,
	    tm_error *err)
{
	tm_npy_reader *r;
	struct stat sb;
	size_t len;
	tm_status st;

	*out = NULL;
	if (!path)
		return tm_error_set(err, TM_ERR_INVALID,
				    "tm_npy_open: no path given");
	r = calloc(1, sizeof *r);
	len = strlen(path);
	if (r)
		r->path = malloc(len + 1);
	if (!r || !r->path) {
		st = tm_error_set_at(err, TM_ERR_NOMEM, path, 0, 0,
				     "out of memory");
		goto fail;
	}
	memcpy(r->path, path, len + 1);
	r->fp = fopen(path, "rb");
	if (!r->fp) {
		st = tm_error_set_at(err, TM_ERR_IO, path, 0, 0,
				     "cannot open: %s", strerror(errno));
		goto fail;
	}
	if (fstat(fileno(r->fp), &sb) != 0) {
		st = tm_error_set_at(err, TM_ERR_IO, path, 0, 0,
				     "cannot stat: %s", strerror(errno));
		goto fail;
	}
	/* fopen succeeds on a directory; say so instead of a read error. */
	if (S_ISDIR(sb.st_mode)) {
		st = tm_error_set_at(err, TM_ERR_IO, path, 0, 0,
				     "cannot read: %s", strerror(EISDIR));
		goto fail;
	}
	if ((st = read_header(r, err)) != TM_OK)
		goto fail;
	if ((st = check_size(r, &sb, err)) != TM_OK)
		goto fail;
	/* Whole arrays (weights) and Fortran order are read through a map.
	 * A C-order stream (calibration data) is read with stdio instead:
	 * every page fault on a map brings a whole page-cache folio (up to
	 * 2 MiB) into the process, so the peak RSS of calibration grew with
	 * the file (1.5x from 2000 to 20000 samples); read() keeps it flat. */
	if (for_load || r->fortran)
		try_map(r, &sb);
	if (r->fortran && !r->map && !for_load && data_bytes(r)) {
		st = tm_error_set_at(err, TM_ERR_UNSUPPORTED, path, 0, 0,
				     "Fortran-order data is streamed through "
				     "a memory map, and this file cannot be "
				     "mapped (%s); save it with "
				     "numpy.save(f, numpy.ascontiguousarray"
				     "(arr))",
				     r->map_errno ? strerror(r->map_errno)
						  : "not a regular file");
		goto fail;
	}
	*out = r;
	return TM_OK;

fail:
	tm_npy_close(r);
	return st;
}

tm_npy_reader *
tm_npy_open(const char *path, tm_error *err)
{
	tm_npy_reader *r;

	reader_open(path, 0, &r, err);
	return r;
}

void
tm_npy_close(tm_npy_reader *r)
{
	if (!r)
		return;
	if (r->map)
		munmap(r->map, r->map_len);
	if (r->fp)
		fclose(r->fp);
	free(r->path);
	free(r);
}

int
tm_npy_ndim(const tm_npy_reader *r)
{
	return r ? r->ndim : 0;
}

const int64_t *
tm_npy_shape(const tm_npy_reader *r)
{
	return r ? r->shape : NULL;
}

size_t
tm_npy_row_numel(const tm_npy_reader *r)
{
	return r ? r->row_numel : 0;
}

size_t
tm_npy_rows(const tm_npy_reader *r)
{
	return r ? r->rows : 0;
}

/* --- conversion to float32 --------------------------------------------- */

static int
host_is_little_endian(void)
{
	const uint16_t one = 1;
	unsigned char b;

	memcpy(&b, &one, 1);
	return b == 1;
}

static uint32_t
le32(const unsigned char *b)
{
	return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 |
	       (uint32_t)b[3] << 24;
}

static uint64_t
le64(const unsigned char *b)
{
	return (uint64_t)le32(b) | (uint64_t)le32(b + 4) << 32;
}

/* Converts n elements at src (little-endian, any alignment) to floats at
 * dst[0], dst[stride], ... One loop per type: no call per element. The
 * integer conversions round to nearest as numpy's astype(float32) does. */
static void
convert(const tm_npy_reader *r, float *dst, size_t stride,
	const unsigned char *src, size_t n)
{
	size_t i;

	switch (r->kind) {
	case NPY_F4:
		if (stride == 1 && host_is_little_endian()) {
			memcpy(dst, src, n * 4);
			break;
		}
		for (i = 0; i < n; i++) {
			uint32_t u = le32(src + 4 * i);

			memcpy(&dst[i * stride], &u, 4);
		}
		break;
	case NPY_F8:
		for (i = 0; i < n; i++) {
			uint64_t u = le64(src + 8 * i);
			double d;

			memcpy(&d, &u, 8);
			dst[i * stride] = tm_priv_narrow(d);
		}
		break;
	case NPY_I1:
		/* Two's complement by arithmetic: converting a byte over 127
		 * to int8_t would be implementation-defined. */
		for (i = 0; i < n; i++)
			dst[i * stride] = (float)(int)(src[i] ^ 0x80) - 128.0f;
		break;
	case NPY_U1:
		for (i = 0; i < n; i++)
			dst[i * stride] = (float)src[i];
		break;
	case NPY_I4:
		for (i = 0; i < n; i++) {
			uint32_t u = le32(src + 4 * i);
			int32_t v;

			memcpy(&v, &u, 4);
			dst[i * stride] = (float)v;
		}
		break;
	case NPY_I8:
		for (i = 0; i < n; i++) {
			uint64_t u = le64(src + 8 * i);
			int64_t v;

			memcpy(&v, &u, 8);
			dst[i * stride] = (float)v;
		}
		break;
	}
}

/* Rows [row0, row0 + n) of a Fortran-order array whose data starts at
 * base, into dst in C order. Element (i, j1, ..., jk) lives at flat index
 * i + rows * (j1 + s1 * (j2 + ...)), so for each position in a row the n
 * rows wanted are contiguous: one run of n elements is read per position
 * and scattered with the row stride. */
static void
gather_fortran(const tm_npy_reader *r, const unsigned char *base, float *dst,
	       size_t row0, size_t n)
{
	size_t idx[TM_MAX_DIMS] = { 0 }, fstride[TM_MAX_DIMS];
	size_t off = 0;	/* of the current position, in elements */

	if (n == 0 || r->row_numel == 0)
		return;
	fstride[0] = 1;
	for (int d = 1; d < r->ndim; d++)
		fstride[d] = fstride[d - 1] * (size_t)r->shape[d - 1];
	for (size_t c = 0; c < r->row_numel; c++) {
		convert(r, dst + c, r->row_numel,
			base + (row0 + off) * r->elsize, n);
		/* Next position in C order: the last index moves fastest. */
		for (int d = r->ndim - 1; d >= 1; d--) {
			off += fstride[d];
			if (++idx[d] < (size_t)r->shape[d])
				break;
			off -= fstride[d] * (size_t)r->shape[d];
			idx[d] = 0;
		}
	}
}

/* --- reading ----------------------------------------------------------- */

/* Index of the first row not wholly inside a file of the given size. */
static size_t
complete_rows(const tm_npy_reader *r, off_t size)
{
	uint64_t have, elems;

	if (size <= r->data_off)
		return 0;
	have = (uint64_t)(size - r->data_off);
	if (!r->fortran) {
		uint64_t row_bytes = (uint64_t)r->row_numel * r->elsize;

		return have / row_bytes < r->rows ? (size_t)(have / row_bytes)
						  : r->rows;
	}
	/* The last element of row i is i + rows * (row_numel - 1). */
	elems = have / r->elsize;
	if (elems < (uint64_t)r->rows * (r->row_numel - 1))
		return 0;
	elems -= (uint64_t)r->rows * (r->row_numel - 1);
	return elems < r->rows ? (size_t)elems : r->rows;
}

static tm_status
eof_error(const tm_npy_reader *r, size_t row, tm_error *err)
{
	return tm_error_set_at(err, TM_ERR_PARSE, r->path, 0, 0,
			       "unexpected end of file in row %zu of %zu "
			       "(counting from 0)", row, r->rows);
}

/* Gives back to the kernel the mapped pages before map offset end, so a
 * long streamed pass keeps only what it reads now in memory. */
static void
release_before(tm_npy_reader *r, size_t end)
{
#ifdef MADV_DONTNEED
	long page = sysconf(_SC_PAGESIZE);
	size_t stop;

	if (page <= 0)
		return;
	stop = end - end % (size_t)page;
	if (stop > r->released &&
	    madvise(r->map + r->released, stop - r->released,
		    MADV_DONTNEED) == 0)
		r->released = stop;
#else
	(void)r;
	(void)end;
#endif
}

static tm_status
read_mapped(tm_npy_reader *r, float *dst, size_t n, tm_error *err)
{
	const unsigned char *base = r->map + r->data_off;
	struct stat sb;
	size_t have;

	/* A file cut short after open would make the map fault (SIGBUS):
	 * check its size first. (Another process cutting it during this
	 * very call can still do that, as with any mapped reader.) */
	if (fstat(fileno(r->fp), &sb) != 0)
		return tm_error_set_at(err, TM_ERR_IO, r->path, 0, 0,
				       "cannot stat: %s", strerror(errno));
	have = complete_rows(r, sb.st_size);
	if (have < r->next_row + n)
		return eof_error(r, have > r->next_row ? have : r->next_row,
				 err);
	if (r->fortran) {
		gather_fortran(r, base, dst, r->next_row, n);
		return TM_OK;
	}
	convert(r, dst, 1, base + r->next_row * r->row_numel * r->elsize,
		n * r->row_numel);
	release_before(r, (size_t)r->data_off +
			  (r->next_row + n) * r->row_numel * r->elsize);
	return TM_OK;
}

/* Reads count values at the current file position into dst. On a short
 * read *done is how many were read. */
static int
read_values(tm_npy_reader *r, float *dst, size_t count, size_t *done)
{
	unsigned char buf[CHUNK_BYTES];
	size_t per = CHUNK_BYTES / r->elsize;

	*done = 0;
	if (count == 0)
		return 1;
	if (r->kind == NPY_F4 && host_is_little_endian()) {
		*done = fread(dst, 4, count, r->fp);
		return *done == count;
	}
	while (*done < count) {
		size_t want = count - *done, got;

		if (want > per)
			want = per;
		got = fread(buf, r->elsize, want, r->fp);
		convert(r, dst + *done, 1, buf, got);
		*done += got;
		if (got < want)
			return 0;
	}
	return 1;
}

static tm_status
read_stdio(tm_npy_reader *r, float *dst, size_t n, tm_error *err)
{
	size_t count, done, row;

	if (r->need_seek) {
		off_t off = r->data_off +
			    (off_t)(r->next_row * r->row_numel * r->elsize);

		if (fseeko(r->fp, off, SEEK_SET) != 0)
			return tm_error_set_at(err, TM_ERR_IO, r->path, 0, 0,
					       "cannot seek: %s",
					       strerror(errno));
		r->need_seek = 0;
	}
	/* n rows of a valid shape: count cannot overflow (check_shape). */
	count = n * r->row_numel;
	if (read_values(r, dst, count, &done))
		return TM_OK;
	r->need_seek = 1;
	row = r->next_row + (r->row_numel ? done / r->row_numel : 0);
	if (ferror(r->fp)) {
		int e = errno;

		clearerr(r->fp);
		return tm_error_set_at(err, TM_ERR_IO, r->path, 0, 0,
				       "read error in row %zu: %s", row,
				       strerror(e));
	}
	clearerr(r->fp);
	return eof_error(r, row, err);
}

tm_status
tm_npy_read_rows(tm_npy_reader *r, float *dst, size_t max_rows, size_t *got,
		 tm_error *err)
{
	size_t n;
	tm_status st;

	if (got)
		*got = 0;
	if (!r || !got || (!dst && max_rows && r->row_numel))
		return tm_error_set(err, TM_ERR_INVALID,
				    "tm_npy_read_rows: NULL argument");
	n = r->rows - r->next_row;
	if (n > max_rows)
		n = max_rows;
	if (n == 0)
		return TM_OK;
	if (r->row_numel == 0)
		st = TM_OK;
	else if (r->map)
		st = read_mapped(r, dst, n, err);
	else
		st = read_stdio(r, dst, n, err);
	if (st)
		return st;
	r->next_row += n;
	*got = n;
	return TM_OK;
}

tm_status
tm_npy_rewind(tm_npy_reader *r, tm_error *err)
{
	if (!r)
		return tm_error_set(err, TM_ERR_INVALID,
				    "tm_npy_rewind: NULL reader");
	if (!r->map) {
		if (fseeko(r->fp, r->data_off, SEEK_SET) != 0)
			return tm_error_set_at(err, TM_ERR_IO, r->path, 0, 0,
					       "cannot seek: %s",
					       strerror(errno));
		clearerr(r->fp);
	}
	r->next_row = 0;
	r->need_seek = 0;
	r->released = 0;
	return TM_OK;
}

/* Fortran order without a map (a pipe): the raw data whole, then the
 * transposition in memory. */
static tm_status
load_fortran_stdio(tm_npy_reader *r, float *dst, tm_error *err)
{
	size_t bytes = r->numel * r->elsize, n;
	unsigned char *raw = malloc(bytes ? bytes : 1);
	tm_status st = TM_OK;

	if (!raw)
		return tm_error_set_at(err, TM_ERR_NOMEM, r->path, 0, 0,
				       "out of memory for %zu bytes", bytes);
	n = fread(raw, 1, bytes, r->fp);
	if (n < bytes && ferror(r->fp))
		st = tm_error_set_at(err, TM_ERR_IO, r->path, 0, 0,
				     "read error: %s", strerror(errno));
	else if (n < bytes)
		st = tm_error_set_at(err, TM_ERR_PARSE, r->path, 0, 0,
				     "unexpected end of file after %zu of "
				     "%zu bytes of data", n, bytes);
	else
		gather_fortran(r, raw, dst, 0, r->rows);
	free(raw);
	return st;
}

tm_status
tm_npy_load(const char *path, tm_npy *a, tm_error *err)
{
	tm_npy_reader *r = NULL;
	size_t got;
	tm_status st;

	if (!a)
		return tm_error_set(err, TM_ERR_INVALID,
				    "tm_npy_load: NULL array");
	memset(a, 0, sizeof *a);
	if ((st = reader_open(path, 1, &r, err)) != TM_OK)
		return st;
	/* At least one float, so data is never NULL for an empty array and
	 * callers need no special case. */
	a->data = malloc((r->numel ? r->numel : 1) * sizeof(float));
	if (!a->data) {
		st = tm_error_set_at(err, TM_ERR_NOMEM, path, 0, 0,
				     "out of memory for %zu values", r->numel);
		goto fail;
	}
	if (r->fortran && !r->map) {
		if ((st = load_fortran_stdio(r, a->data, err)) != TM_OK)
			goto fail;
	} else {
		st = tm_npy_read_rows(r, a->data, r->rows, &got, err);
		if (st != TM_OK)
			goto fail;
		if (got != r->rows) {
			st = tm_error_set_at(err, TM_ERR_INTERNAL, path, 0, 0,
					     "read %zu of %zu rows", got,
					     r->rows);
			goto fail;
		}
	}
	a->ndim = r->ndim;
	memcpy(a->shape, r->shape, sizeof a->shape);
	a->numel = r->numel;
	tm_npy_close(r);
	return TM_OK;

fail:
	tm_npy_close(r);
	tm_npy_fini(a);
	return st;
}

void
tm_npy_fini(tm_npy *a)
{
	if (!a)
		return;
	free(a->data);
	memset(a, 0, sizeof *a);
}

/* Appended for calibration threads (core/dataset.c): each thread has its
 * own reader of the file and reads its own batches, in any order. */
tm_status
tm_npy_seek_row(tm_npy_reader *r, size_t row, tm_error *err)
{
	size_t off;

	if (!r)
		return tm_error_set(err, TM_ERR_INVALID,
				    "tm_npy_seek_row: NULL reader");
	if (row > r->rows)
		return tm_error_set_at(err, TM_ERR_INVALID, r->path, 0, 0,
				       "cannot seek to row %zu of %zu", row,
				       r->rows);
	/* Without a map the stream seeks lazily, before the next read. */
	r->next_row = row;
	r->need_seek = 1;
	/* A map gives back the pages behind its reads: after a step back,
	 * start counting from there, so the pages read again are given
	 * back too. (Forward, the pages skipped are given back with the
	 * next read's.) */
	off = (size_t)r->data_off + row * r->row_numel * r->elsize;
	if (off < r->released) {
		long page = sysconf(_SC_PAGESIZE);

		r->released = page > 0 ? off - off % (size_t)page : 0;
	}
	return TM_OK;
}
