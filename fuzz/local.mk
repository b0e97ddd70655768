# tmpipe fuzzing — included from the top Makefile.am. See fuzz/README.md.

FUZZ_TARGETS = npy pipeline config onnx blob
TM_FUZZ_COMMON = fuzz/fuzz.h fuzz/common.c
TM_FUZZ_HARNESSES = fuzz/npy.c fuzz/pipeline.c fuzz/config.c fuzz/onnx.c \
	fuzz/blob.c
TM_FUZZ_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/core \
	-I$(top_srcdir)/plugins/onnx -I$(top_builddir)/plugins/onnx \
	$(PROTOBUF_C_CFLAGS) \
	-DTM_FUZZ_PLUGIN_DIR=\"$(abs_top_builddir)/plugins/.libs\"
TM_FUZZ_LIBS = plugins/onnx/libonnx_import.la runtime/libtmrt.la \
	core/libtmpipe_core.la

# The replay of the corpora and regressions, built and run by make
# check with any compiler (its log is tests/fuzz_replay.log, which CI
# counts). Under valgrind it replays a part of the corpora: set
# TM_FUZZ_REPLAY_EVERY (see fuzz/replay.c).
check_PROGRAMS += tests/fuzz_replay
TESTS += tests/fuzz_replay
tests_fuzz_replay_SOURCES = fuzz/replay.c $(TM_FUZZ_COMMON) $(TM_FUZZ_HARNESSES)
tests_fuzz_replay_CPPFLAGS = $(TM_FUZZ_CPPFLAGS)
tests_fuzz_replay_LDADD = $(TM_FUZZ_LIBS)

EXTRA_DIST += fuzz/README.md fuzz/corpus fuzz/regressions fuzz/dict \
	fuzz/gen/onnx_seeds.py

# configure --enable-fuzz: one libFuzzer binary a parser, and make fuzz.
if ENABLE_FUZZ
TM_FUZZ_BINS = fuzz/fuzz-npy fuzz/fuzz-pipeline fuzz/fuzz-config \
	fuzz/fuzz-onnx fuzz/fuzz-blob
noinst_PROGRAMS = $(TM_FUZZ_BINS)
TM_FUZZ_BIN_CPPFLAGS = $(TM_FUZZ_CPPFLAGS) -DTM_FUZZ_LIBFUZZER
fuzz_fuzz_npy_SOURCES = fuzz/npy.c $(TM_FUZZ_COMMON)
fuzz_fuzz_npy_CPPFLAGS = $(TM_FUZZ_BIN_CPPFLAGS)
fuzz_fuzz_npy_LDFLAGS = $(LIBFUZZER_FLAGS)
fuzz_fuzz_npy_LDADD = $(TM_FUZZ_LIBS)
fuzz_fuzz_pipeline_SOURCES = fuzz/pipeline.c $(TM_FUZZ_COMMON)
fuzz_fuzz_pipeline_CPPFLAGS = $(TM_FUZZ_BIN_CPPFLAGS)
fuzz_fuzz_pipeline_LDFLAGS = $(LIBFUZZER_FLAGS)
fuzz_fuzz_pipeline_LDADD = $(TM_FUZZ_LIBS)
fuzz_fuzz_config_SOURCES = fuzz/config.c $(TM_FUZZ_COMMON)
fuzz_fuzz_config_CPPFLAGS = $(TM_FUZZ_BIN_CPPFLAGS)
fuzz_fuzz_config_LDFLAGS = $(LIBFUZZER_FLAGS)
fuzz_fuzz_config_LDADD = $(TM_FUZZ_LIBS)
fuzz_fuzz_onnx_SOURCES = fuzz/onnx.c $(TM_FUZZ_COMMON)
fuzz_fuzz_onnx_CPPFLAGS = $(TM_FUZZ_BIN_CPPFLAGS)
fuzz_fuzz_onnx_LDFLAGS = $(LIBFUZZER_FLAGS)
fuzz_fuzz_onnx_LDADD = $(TM_FUZZ_LIBS)
fuzz_fuzz_blob_SOURCES = fuzz/blob.c $(TM_FUZZ_COMMON)
fuzz_fuzz_blob_CPPFLAGS = $(TM_FUZZ_BIN_CPPFLAGS)
fuzz_fuzz_blob_LDFLAGS = $(LIBFUZZER_FLAGS)
fuzz_fuzz_blob_LDADD = $(TM_FUZZ_LIBS)

# Each fuzzer for FUZZ_SECONDS over its seed corpus, one after the
# other. New inputs go to fuzz/work/<target>/ in the build tree (the
# seeds in the source tree stay as they are), crashes to
# fuzz/artifacts/<target>/. FUZZ_TARGETS picks fuzzers, FUZZ_FLAGS adds
# libFuzzer options.
FUZZ_SECONDS = 60
FUZZ_FLAGS =
fuzz: $(TM_FUZZ_BINS) $(pkglib_LTLIBRARIES)
	$(AM_V_at)for t in $(FUZZ_TARGETS); do \
	  $(MKDIR_P) fuzz/work/$$t fuzz/artifacts/$$t || exit 1; \
	  echo "== fuzz-$$t for $(FUZZ_SECONDS) s"; \
	  dict=; test -f $(srcdir)/fuzz/dict/$$t.dict && \
	    dict=-dict=$(srcdir)/fuzz/dict/$$t.dict; \
	  ./fuzz/fuzz-$$t -max_total_time=$(FUZZ_SECONDS) \
	    -print_final_stats=1 $$dict \
	    -artifact_prefix=fuzz/artifacts/$$t/ $(FUZZ_FLAGS) \
	    fuzz/work/$$t $(srcdir)/fuzz/corpus/$$t || exit 1; \
	done
else
fuzz:
	@echo "make fuzz needs a build configured with --enable-fuzz" \
	  "(clang with libFuzzer; see fuzz/README.md)" >&2; exit 1
endif
.PHONY: fuzz

clean-local: clean-fuzz
clean-fuzz:
	-rm -rf fuzz/work fuzz/artifacts
.PHONY: clean-fuzz
