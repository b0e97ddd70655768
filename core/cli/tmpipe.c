/* tmpipe — command line. See tmpipe(1).
 *
 * Exit status: 0 success, 1 the run failed, 2 usage, configuration or
 * pipeline validation error. */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <tmpipe/log.h>
#include <tmpipe/tmpipe.h>

#include "../config_priv.h"
#include "../loader_priv.h"
#include "../params_priv.h"
#include "../pipeline_priv.h"
#include "../run_priv.h"

#define EXIT_RUN 1
#define EXIT_USAGE 2

typedef struct cli {
	const char **plugin_paths;	/* --plugin-path, NULL-terminated */
	size_t n_plugin_paths;
	const char **sets;		/* --set, NULL-terminated */
	size_t n_sets;
	const char *config;	/* --config */
	int threads;		/* -j, -1 unset, 0 all cores */
	int verbose, quiet;
	const char *kind;	/* plugins --kind */
	tm_config conf;
	tm_log_level level;
} cli;

static void
usage(FILE *fp)
{
	fputs("Usage: tmpipe [OPTION]... COMMAND [ARG]...\n"
	      "Quantize a trained network to int8 through a pipeline of "
	      "plugins.\n"
	      "\n"
	      "Commands:\n"
	      "  run PIPELINE             validate PIPELINE, then run it\n"
	      "  validate PIPELINE        check PIPELINE and its parameters; "
	      "run nothing\n"
	      "  plugins [NAME]           list the plugins found, or show "
	      "one\n"
	      "  inspect MODEL|PIPELINE   show a model as its frontend "
	      "loads it\n"
	      "\n"
	      "Options:\n"
	      "  -p, --plugin-path=PATH   search PATH (a folder or a .so) "
	      "first; repeatable\n"
	      "  -c, --config=FILE        read FILE after the standard "
	      "configuration files\n"
	      "  -s, --set=STAGE.KEY=VAL  override a pipeline value, e.g.\n"
	      "                           --set calibration.data=calib.npy\n"
	      "      --kind=KIND          plugins: only frontend, observer,\n"
	      "                           transform or emitter plugins\n"
	      "  -j, --threads=N          worker threads (default: "
	      "configuration, else 1)\n"
	      "  -v, --verbose            say more (per-stage times); "
	      "repeatable\n"
	      "  -q, --quiet              print errors only\n"
	      "  -h, --help               show this help and exit\n"
	      "  -V, --version            show the version and exit\n"
	      "\n"
	      "Exit status: 0 success, 1 the run failed, 2 usage, "
	      "configuration or\n"
	      "validation error. See tmpipe(1) and tmpipe-pipeline(5).\n",
	      fp);
}

static void
print_error(const tm_error *err)
{
	char buf[TM_ERROR_FILE_MAX + TM_ERROR_MSG_MAX + 64];

	tm_error_format(err, buf, sizeof buf);
	if (err->file[0])
		fprintf(stderr, "%s\n", buf);
	else
		fprintf(stderr, "tmpipe: %s\n", buf);
}

static tm_registry *
open_registry(cli *c, tm_error *err)
{
	tm_registry *r = tm_registry_new();

	if (!r) {
		tm_error_set(err, TM_ERR_NOMEM, "out of memory");
		return NULL;
	}
	if (tm_registry_scan(r, c->plugin_paths, &c->conf.plugin_paths,
			     TM_PLUGINDIR, err)) {
		tm_registry_free(r);
		return NULL;
	}
	if (c->level >= TM_LOG_VERBOSE)
		for (size_t i = 0; i < r->n; i++) {
			const tm_plugin *p = r->v[i];

			if (p->shadowed_by)
				fprintf(stderr, "tmpipe: %s is shadowed by "
					"%s\n", p->path, p->shadowed_by->path);
		}
	return r;
}

static void
stage_hook(void *user, const char *stage, double secs)
{
	cli *c = user;

	if (c->level >= TM_LOG_VERBOSE)
		fprintf(stderr, "tmpipe: %-28s %9.3f ms\n", stage,
			secs * 1e3);
}

/* What the core and the plugins report (tmpipe/log.h): warnings unless
 * -q, notes with -v, traces with -vv. */
static void
log_hook(void *user, tm_log_severity sev, const char *source,
	 const char *message)
{
	const cli *c = user;

	if ((int)c->level >= (int)sev)
		fprintf(stderr, "tmpipe: %s%s: %s\n",
			sev == TM_LOG_WARNING ? "warning: " : "", source,
			message);
}

static void
format_db(char *buf, size_t size, double db)
{
	if (isinf(db))
		snprintf(buf, size, "%s", db > 0 ? "inf" : "-inf");
	else
		snprintf(buf, size, "%.2f", db);
}

/* Top-1 accuracy against verify.labels. */
static void
print_accuracy(FILE *fp, const tm_verify_report *v)
{
	char drop[64];

	if (!v->has_labels)
		return;
	if (v->has_max_drop)
		snprintf(drop, sizeof drop, "  (max %g)  %s", v->max_drop,
			 v->accuracy_pass ? "PASS" : "FAIL");
	else
		drop[0] = 0;
	fprintf(fp, "verify: top-1 accuracy of '%s' against %zu labels "
		"(%s)\n", v->labeled_output, v->samples, v->labels_path);
	fprintf(fp, "  %-9s  %6.2f%%  %zu/%zu\n",
		v->reference == TM_VERIFY_REF_QUANTIZED ? "reference" : "float",
		100.0 * v->float_accuracy, v->float_correct, v->samples);
	fprintf(fp, "  int8       %6.2f%%  %zu/%zu  drop %.2f points%s\n",
		100.0 * v->int8_accuracy, v->int8_correct, v->samples,
		v->accuracy_drop, drop);
	fprintf(fp, "  agreement  %6.2f%%  %zu/%zu\n", 100.0 * v->agreement,
		v->agree, v->samples);
}

/* Every tensor the runtime holds, against the float reference; steps is
 * max |err| in units of the tensor's scale. */
static void
print_tensors(FILE *fp, const tm_verify_report *v)
{
	int w = 6;
	char sqnr[32], shape[64];

	if (!v->n_tensors)
		return;
	for (size_t i = 0; i < v->n_tensors; i++)
		if ((int)strlen(v->tensors[i].name) > w)
			w = (int)strlen(v->tensors[i].name);
	fprintf(fp, "verify: every tensor, int8 against %s\n",
		v->reference == TM_VERIFY_REF_QUANTIZED
		? "the quantized reference" : "float");
	fprintf(fp, "  %-*s  %-12s  %9s  %11s  %9s\n", w, "tensor", "shape",
		"SQNR dB", "max |err|", "max steps");
	for (size_t i = 0; i < v->n_tensors; i++) {
		const tm_verify_tensor *t = &v->tensors[i];
		size_t len = 0;

		format_db(sqnr, sizeof sqnr, t->sqnr_db);
		shape[0] = 0;
		for (int d = 0; d < t->ndim && len < sizeof shape; d++)
			len += (size_t)snprintf(shape + len,
						sizeof shape - len,
						"%s%lld", d ? "x" : "",
						(long long)t->shape[d]);
		fprintf(fp, "  %-*s  %-12s  %9s  %11.6f  %9.2f\n", w, t->name,
			shape, sqnr, t->max_abs, t->max_abs / t->scale);
	}
}

/* The verify stage's parity table: one line per model output. */
static void
print_verify(FILE *fp, const tm_verify_report *v)
{
	int w = 6;
	char sqnr[32], top1[32], tol[32];

	if (!v->ran || !v->outputs)
		return;
	for (size_t i = 0; i < v->n_outputs; i++)
		if ((int)strlen(v->outputs[i].name) > w)
			w = (int)strlen(v->outputs[i].name);
	fprintf(fp, "verify: %zu samples through libtmrt (arena %zu bytes, "
		"blob %zu bytes)%s\n", v->samples, v->arena_bytes,
		v->blob_bytes, v->reference == TM_VERIFY_REF_QUANTIZED
		? " against the quantized reference" : "");
	fprintf(fp, "  %-*s  %11s  %11s  %9s  %6s  %9s\n", w, "output",
		"max |err|", "mean |err|", "SQNR dB", "top-1", "tolerance");
	for (size_t i = 0; i < v->n_outputs; i++) {
		const tm_verify_output *o = &v->outputs[i];

		format_db(sqnr, sizeof sqnr, o->sqnr_db);
		if (o->top1 < 0)
			snprintf(top1, sizeof top1, "-");
		else
			snprintf(top1, sizeof top1, "%.1f%%",
				 100.0 * o->top1);
		if (v->has_tolerance)
			snprintf(tol, sizeof tol, "%g", v->tolerance);
		else
			snprintf(tol, sizeof tol, "-");
		fprintf(fp, "  %-*s  %11.6f  %11.6f  %9s  %6s  %9s  %s\n", w,
			o->name, o->max_abs, o->mean_abs, sqnr, top1, tol,
			!v->has_tolerance ? "(report only)"
			: o->pass ? "PASS" : "FAIL");
	}
	print_accuracy(fp, v);
	print_tensors(fp, v);
}

static int
cmd_pipeline(cli *c, const char *path, int run)
{
	tm_error err;
	tm_registry *r;
	tm_pipeline *pl = NULL;
	tm_run_summary sum;
	int rc = 0;

	tm_error_clear(&err);
	r = open_registry(c, &err);
	if (!r) {
		print_error(&err);
		return EXIT_USAGE;
	}
	if (tm_pipeline_load(path, r, c->sets, &pl, &err)) {
		print_error(&err);
		rc = EXIT_USAGE;
		goto out;
	}
	/* -j, else [run] threads: 1..256 by now. */
	pl->threads = c->conf.threads > 0 ? (size_t)c->conf.threads : 1;
	if (!run) {
		if (c->level >= TM_LOG_INFO)
			printf("%s: valid (%zu transform%s, %zu emitter%s)\n",
			       path, pl->n_transforms,
			       pl->n_transforms == 1 ? "" : "s",
			       pl->n_emitters, pl->n_emitters == 1 ? "" : "s");
		goto out;
	}
	if (tm_pipeline_run(pl, stage_hook, c, &sum, NULL, &err)) {
		print_error(&err);
		if (sum.files_written == 0)
			fprintf(stderr, "tmpipe: run failed; no output was "
				"written\n");
		else
			fprintf(stderr, "tmpipe: run failed after %zu "
				"output%s had been put in place:\n",
				sum.files_written,
				sum.files_written == 1 ? "" : "s");
		for (size_t i = 0; i < sum.files.n; i++)
			fprintf(stderr, "  %s\n", sum.files.v[i]);
		print_verify(stderr, &sum.verify);
		tm_run_summary_fini(&sum);
		rc = EXIT_RUN;
		goto out;
	}
	if (c->level >= TM_LOG_INFO) {
		printf("tmpipe: %zu stages in %.3f s; ", sum.stages,
		       sum.seconds);
		if (pl->has_calibration)
			printf("%zu tensors observed over %zu samples (%zu "
			       "fixed range); ", sum.tensors_observed,
			       sum.samples, sum.tensors_fixed);
		else
			printf("no calibration; ");
		printf("%zu file%s written\n", sum.files_written,
		       sum.files_written == 1 ? "" : "s");
		for (size_t i = 0; i < sum.files.n; i++)
			printf("  %s\n", sum.files.v[i]);
		print_verify(stdout, &sum.verify);
	}
	tm_run_summary_fini(&sum);
out:
	tm_pipeline_free(pl);
	tm_registry_free(r);
	return rc;
}

/* A name from a model file, printed with its control characters as '?'
 * (a newline or an escape sequence must not reach the terminal). */
static void
put_name(const char *s)
{
	for (; *s; s++)
		putchar((unsigned char)*s < 0x20 || *s == 0x7f ? '?' : *s);
}

/* "<lead>name [d0, d1, ...]" and a newline */
static void
put_tensor_line(const char *lead, const tm_tensor *t)
{
	printf("%s", lead);
	put_name(t->name);
	printf(" [");
	for (int d = 0; d < t->ndim; d++)
		printf("%s%lld", d ? ", " : "", (long long)t->shape[d]);
	printf("]\n");
}

/* A model as its frontend loaded it: inputs, layers, outputs, constants
 * and the quantization a QDQ model gives. */
static void
print_model(const tm_model *m)
{
	size_t nconst = 0, nvals = 0, ngiven = 0;

	printf("inputs:\n");
	for (size_t i = 0; i < m->n_inputs; i++)
		put_tensor_line("  ", m->tensors[m->inputs[i]]);
	printf("layers: %zu\n", m->n_nodes);
	for (size_t k = 0; k < m->n_nodes; k++) {
		const tm_node *n = m->nodes[k];

		printf("  ");
		put_name(n->name);
		printf(": %s(", tm_op_name(n->op));
		for (size_t i = 0; i < n->n_inputs; i++) {
			printf("%s", i ? ", " : "");
			put_name(m->tensors[n->inputs[i]]->name);
		}
		put_tensor_line(") -> ", m->tensors[n->outputs[0]]);
	}
	printf("outputs:\n");
	for (size_t i = 0; i < m->n_outputs; i++)
		put_tensor_line("  ", m->tensors[m->outputs[i]]);
	for (size_t t = 0; t < m->n_tensors; t++) {
		const tm_tensor *x = m->tensors[t];

		if (x->kind == TM_TENSOR_CONST) {
			nconst++;
			nvals += tm_tensor_numel(x);
		}
		ngiven += x->quant_given != 0;
	}
	printf("constants: %zu (%zu values)\n", nconst, nvals);
	if (!ngiven)
		return;
	printf("quantization given by the model: %zu tensors\n", ngiven);
	for (size_t t = 0; t < m->n_tensors; t++) {
		const tm_tensor *x = m->tensors[t];

		if (!x->quant_given)
			continue;
		printf("  ");
		put_name(x->name);
		if (x->q.scheme == TM_QSCHEME_PER_CHANNEL)
			printf(": int8, %zu scales along axis %d\n",
			       x->q.n_channels, x->q.axis);
		else
			printf(": scale %.9g, zero point %ld%s\n", x->q.scale,
			       (long)x->q.zero_point,
			       x->kind == TM_TENSOR_CONST ? " (int8)" : "");
	}
}

/* The length of the UTF-8 sequence at s, or 0 when it is not one (a
 * YAML document holds UTF-8 only). */
static size_t
utf8_len(const unsigned char *s)
{
	size_t n = s[0] < 0x80 ? 1 : (s[0] & 0xe0) == 0xc0 ? 2
		 : (s[0] & 0xf0) == 0xe0 ? 3 : (s[0] & 0xf8) == 0xf0 ? 4 : 0;

	if (n == 2 && s[0] < 0xc2)
		return 0;	/* overlong */
	for (size_t k = 1; k < n; k++)
		if ((s[k] & 0xc0) != 0x80)
			return 0;
	return n;
}

/* path as a YAML double-quoted scalar: \, " and control characters
 * escaped; -1 when it is not UTF-8 (YAML cannot hold it). */
static int
put_yaml_path(FILE *f, const char *path)
{
	const unsigned char *s = (const unsigned char *)path;

	fputc('"', f);
	while (*s) {
		size_t n = utf8_len(s);

		if (!n)
			return -1;
		if (*s == '\\' || *s == '"')
			fprintf(f, "\\%c", *s);
		else if (*s < 0x20 || *s == 0x7f)
			fprintf(f, "\\x%02X", *s);
		else
			fwrite(s, 1, n, f);
		s += n;
	}
	fputc('"', f);
	return 0;
}

/* tmpipe inspect: path is a pipeline, or a model file a frontend reads
 * by its extension (.onnx), for which a one-line pipeline is made. */
static int
cmd_inspect(cli *c, const char *path)
{
	size_t len = strlen(path);
	int model_file = len > 5 && strcmp(path + len - 5, ".onnx") == 0;
	char tmp[] = "/tmp/tmpipe-inspect-XXXXXX";
	tm_error err;
	tm_registry *r;
	tm_pipeline *pl = NULL;
	tm_model *m = NULL;
	int rc = 0;

	tm_error_clear(&err);
	r = open_registry(c, &err);
	if (!r) {
		print_error(&err);
		return EXIT_USAGE;
	}
	if (model_file) {
		char *abs = realpath(path, NULL);
		int fd = abs ? mkstemp(tmp) : -1;
		FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
		int bad;

		if (!f) {
			/* The model file missing is the frontend's kind of
			 * error (status 1), as in a pipeline. */
			fprintf(stderr, "tmpipe: %s: %s\n", path,
				strerror(errno));
			if (fd >= 0) {
				close(fd);
				unlink(tmp);
			}
			free(abs);
			rc = abs ? EXIT_USAGE : EXIT_RUN;
			goto out;
		}
		fputs("tmpipe: 1\nmodel:\n  frontend: onnx\n  path: ", f);
		bad = put_yaml_path(f, abs);
		fputs("\n", f);
		free(abs);
		if (fclose(f) || bad) {
			if (bad)
				fprintf(stderr, "tmpipe: %s: the path is not "
					"UTF-8; inspect a pipeline that names "
					"the model instead\n", path);
			else
				fprintf(stderr, "tmpipe: %s: %s\n", tmp,
					strerror(errno));
			unlink(tmp);
			rc = EXIT_USAGE;
			goto out;
		}
	}
	if (tm_pipeline_load(model_file ? tmp : path, r, c->sets, &pl,
			     &err)) {
		rc = EXIT_USAGE;
	} else if (tm_pipeline_load_model(pl, &m, &err)) {
		rc = EXIT_RUN;
	}
	if (model_file)
		unlink(tmp);
	if (rc) {
		/* Not the made-up pipeline's place: the model file's
		 * messages name it. */
		if (model_file && strcmp(err.file, tmp) == 0)
			err.file[0] = '\0';
		print_error(&err);
		goto out;
	}
	put_name(path);
	printf(": frontend %s\n", pl->frontend.plugin->desc->name);
	print_model(m);
out:
	tm_model_free(m);
	tm_pipeline_free(pl);
	tm_registry_free(r);
	return rc;
}

static void
print_param(const tm_param_spec *sp, int indent)
{
	printf("%*s%-17s %-11s", indent, "", sp->name,
	       tm_param_type_name(sp->type));
	if (sp->flags & TM_PARAM_REQUIRED)
		printf(" required");
	else if (sp->def)
		printf(" default %s", sp->def);
	if (sp->flags & TM_PARAM_HAS_MIN)
		printf(" min %.15g", sp->min);
	if (sp->flags & TM_PARAM_HAS_MAX)
		printf(" max %.15g", sp->max);
	if (sp->choices) {
		printf(" one of");
		for (const char *const *ch = sp->choices; *ch; ch++)
			printf("%s%s", ch == sp->choices ? " " : ", ", *ch);
	}
	printf("\n%*s%s\n", indent + 4, "", sp->help ? sp->help : "");
	if (sp->type == TM_PARAM_LIST || sp->type == TM_PARAM_MAP)
		for (const tm_param_spec *f = sp->fields; f && f->name; f++)
			print_param(f, indent + 4);
}

static int
kind_from_name(const char *s, tm_plugin_kind *k)
{
	for (int i = TM_PLUGIN_FRONTEND; i < TM_PLUGIN_KIND_COUNT; i++)
		if (strcmp(s, tm_plugin_kind_name((tm_plugin_kind)i)) == 0) {
			*k = (tm_plugin_kind)i;
			return 0;
		}
	return -1;
}

static int
cmd_plugins(cli *c, const char *name)
{
	tm_plugin_kind kind = 0;
	tm_registry *r;
	tm_error err;
	int rc = 0;

	if (c->kind && kind_from_name(c->kind, &kind)) {
		fprintf(stderr, "tmpipe: --kind: '%s' is not one of frontend, "
			"observer, transform, emitter\n", c->kind);
		return EXIT_USAGE;
	}
	tm_error_clear(&err);
	r = open_registry(c, &err);
	if (!r) {
		print_error(&err);
		return EXIT_USAGE;
	}
	if (name) {
		const tm_plugin *p;

		if (tm_registry_find(r, name, kind, &p, &err)) {
			print_error(&err);
			rc = EXIT_USAGE;
			goto out;
		}
		printf("name:        %s\n", p->desc->name);
		printf("kind:        %s\n", tm_plugin_kind_name(p->desc->kind));
		printf("version:     %s\n", p->desc->version);
		printf("description: %s\n", p->desc->description);
		printf("file:        %s\n", p->path);
		printf("plugin ABI:  %u.%u\n", (unsigned)p->desc->abi_major,
		       (unsigned)p->desc->abi_minor);
		printf("parameters:%s\n",
		       p->desc->params && p->desc->params[0].name ? ""
								  : " none");
		for (const tm_param_spec *sp = p->desc->params; sp && sp->name;
		     sp++)
			print_param(sp, 2);
		goto out;
	}
	printf("%-14s %-10s %-8s %s\n", "NAME", "KIND", "VERSION", "FILE");
	for (size_t i = 0; i < r->n; i++) {
		const tm_plugin *p = r->v[i];

		if (!p->desc || p->shadowed_by ||
		    (kind && p->desc->kind != kind))
			continue;
		printf("%-14s %-10s %-8s %s%s\n", p->name,
		       tm_plugin_kind_name(p->desc->kind), p->desc->version,
		       p->path, p->duplicate ? " (duplicate: unusable)" : "");
	}
	for (size_t i = 0; i < r->n; i++) {
		const tm_plugin *p = r->v[i];

		if (p->desc)
			continue;
		fprintf(stderr, "tmpipe: not loaded: ");
		print_error(&p->error);
	}
out:
	tm_registry_free(r);
	return rc;
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "plugin-path", required_argument, NULL, 'p' },
		{ "config", required_argument, NULL, 'c' },
		{ "set", required_argument, NULL, 's' },
		{ "kind", required_argument, NULL, 'k' },
		{ "threads", required_argument, NULL, 'j' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 }
	};
	cli c;
	tm_error err;
	const char *cmd;
	int opt, rc = EXIT_USAGE;

	memset(&c, 0, sizeof c);
	c.threads = -1;
	tm_config_init(&c.conf);
	/* argv outlives everything: keep pointers into it. */
	c.plugin_paths = calloc((size_t)argc + 1, sizeof *c.plugin_paths);
	c.sets = calloc((size_t)argc + 1, sizeof *c.sets);
	if (!c.plugin_paths || !c.sets) {
		fprintf(stderr, "tmpipe: out of memory\n");
		goto out;
	}
	while ((opt = getopt_long(argc, argv, "p:c:s:j:vqhV", opts, NULL)) !=
	       -1) {
		char *end;

		switch (opt) {
		case 'p':
			c.plugin_paths[c.n_plugin_paths++] = optarg;
			break;
		case 'c':
			c.config = optarg;
			break;
		case 's':
			c.sets[c.n_sets++] = optarg;
			break;
		case 'k':
			c.kind = optarg;
			break;
		case 'j':
			c.threads = (int)strtol(optarg, &end, 10);
			if (*end || end == optarg || c.threads < 0 ||
			    c.threads > 256) {
				fprintf(stderr, "tmpipe: --threads: '%s' is "
					"not an integer between 0 and 256\n",
					optarg);
				goto out;
			}
			break;
		case 'v':
			c.verbose++;
			break;
		case 'q':
			c.quiet = 1;
			break;
		case 'h':
			usage(stdout);
			rc = 0;
			goto out;
		case 'V':
			printf("tmpipe %s (plugin ABI %d.%d)\n", tm_version(),
			       TM_PLUGIN_ABI_MAJOR, TM_PLUGIN_ABI_MINOR);
			rc = 0;
			goto out;
		default:
			fprintf(stderr, "Try 'tmpipe --help'.\n");
			goto out;
		}
	}
	tm_error_clear(&err);
	if (tm_config_load_default(&c.conf, TM_SYSCONFDIR, &err) ||
	    (c.config && tm_config_load_file(&c.conf, c.config, &err))) {
		print_error(&err);
		goto out;
	}
	/* The command line wins over every file. */
	c.level = c.conf.log_level;
	if (c.verbose)
		c.level = c.verbose > 1 ? TM_LOG_DEBUG : TM_LOG_VERBOSE;
	if (c.quiet)
		c.level = TM_LOG_QUIET;
	tm_log_set_handler(log_hook, &c);
	if (c.threads == 0) {
		long cpus = sysconf(_SC_NPROCESSORS_ONLN);

		c.conf.threads = cpus < 1 ? 1 : cpus > 256 ? 256 : (int)cpus;
	}
	else if (c.threads > 0)
		c.conf.threads = c.threads;
	if (c.level >= TM_LOG_DEBUG)
		for (size_t i = 0; i < c.conf.files.n; i++)
			fprintf(stderr, "tmpipe: read %s\n", c.conf.files.v[i]);

	if (optind >= argc) {
		fprintf(stderr, "tmpipe: missing command (run, validate, "
			"inspect or plugins)\nTry 'tmpipe --help'.\n");
		goto out;
	}
	cmd = argv[optind++];
	if (strcmp(cmd, "run") == 0 || strcmp(cmd, "validate") == 0) {
		if (argc - optind != 1) {
			fprintf(stderr, "tmpipe: %s takes one pipeline file\n"
				"Try 'tmpipe --help'.\n", cmd);
			goto out;
		}
		rc = cmd_pipeline(&c, argv[optind], cmd[0] == 'r');
	} else if (strcmp(cmd, "inspect") == 0) {
		if (argc - optind != 1) {
			fprintf(stderr, "tmpipe: inspect takes one model or "
				"pipeline file\nTry 'tmpipe --help'.\n");
			goto out;
		}
		rc = cmd_inspect(&c, argv[optind]);
	} else if (strcmp(cmd, "plugins") == 0) {
		if (argc - optind > 1) {
			fprintf(stderr, "tmpipe: plugins takes at most one "
				"name\nTry 'tmpipe --help'.\n");
			goto out;
		}
		rc = cmd_plugins(&c, optind < argc ? argv[optind] : NULL);
	} else {
		fprintf(stderr, "tmpipe: unknown command '%s' (commands: run, "
			"validate, inspect, plugins)\nTry 'tmpipe --help'.\n", cmd);
	}
out:
	free(c.plugin_paths);
	free(c.sets);
	tm_config_fini(&c.conf);
	return rc;
}
