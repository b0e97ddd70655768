# tmpipe tests — included from the top Makefile.am.

TEST_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/core $(CUNIT_CFLAGS)
TEST_LDADD = core/libtmpipe_core.la $(CUNIT_LIBS)

UNIT_TESTS = \
	tests/unit/test_blob \
	tests/unit/test_calib \
	tests/unit/test_cnn \
	tests/unit/test_config \
	tests/unit/test_dfq \
	tests/unit/test_loader \
	tests/unit/test_lower \
	tests/unit/test_model \
	tests/unit/test_npy \
	tests/unit/test_observers \
	tests/unit/test_ops \
	tests/unit/test_params \
	tests/unit/test_pipeline \
	tests/unit/test_quant \
	tests/unit/test_quantize \
	tests/unit/test_tmrt \
	tests/unit/test_transforms \
	tests/unit/test_verify \
	tests/unit/test_tmrt_ops \
	tests/unit/test_tmrt_ops_nobuf \
	tests/unit/test_xor

# ONNX's backend node tests through the onnx frontend's importer and the
# float interpreter (skips, exit 77, without libonnx-testdata).
ONNX_TESTS = tests/onnx_conformance tests/unit/test_onnx

check_PROGRAMS = $(UNIT_TESTS) $(ONNX_TESTS)

tests_onnx_conformance_SOURCES = tests/onnx_conformance.c
tests_onnx_conformance_CPPFLAGS = $(TEST_CPPFLAGS) \
	-I$(top_srcdir)/plugins/onnx -I$(top_builddir)/plugins/onnx \
	$(PROTOBUF_C_CFLAGS)
tests_onnx_conformance_LDADD = plugins/onnx/libonnx_import.la $(TEST_LDADD)

tests_unit_test_onnx_SOURCES = tests/unit/test_onnx.c tests/unit/runner.c tests/unit/runner.h
tests_unit_test_onnx_CPPFLAGS = $(tests_onnx_conformance_CPPFLAGS)
tests_unit_test_onnx_LDADD = plugins/onnx/libonnx_import.la $(TEST_LDADD)

tests_unit_test_blob_SOURCES = tests/unit/test_blob.c tests/unit/runner.c tests/unit/runner.h
tests_unit_test_blob_CPPFLAGS = $(TEST_CPPFLAGS)
tests_unit_test_blob_LDADD = runtime/libtmrt.la $(TEST_LDADD)

tests_unit_test_calib_SOURCES = tests/unit/test_calib.c tests/unit/runner.c tests/unit/runner.h
tests_unit_test_calib_CPPFLAGS = $(TEST_CPPFLAGS)
tests_unit_test_calib_LDADD = $(TEST_LDADD)

tests_unit_test_cnn_SOURCES = tests/unit/test_cnn.c tests/unit/runner.c tests/unit/runner.h
tests_unit_test_cnn_CPPFLAGS = $(TEST_CPPFLAGS)
tests_unit_test_cnn_LDADD = $(TEST_LDADD)

tests_unit_test_observers_SOURCES = tests/unit/test_observers.c tests/unit/runner.c tests/unit/runner.h
tests_unit_test_observers_CPPFLAGS = $(TEST_CPPFLAGS)
tests_unit_test_observers_LDADD = $(TEST_LDADD)

tests_unit_test_ops_SOURCES = tests/unit/test_ops.c tests/unit/runner.c tests/unit/runner.h
tests_unit_test_ops_CPPFLAGS = $(TEST_CPPFLAGS)
tests_unit_test_ops_LDADD = $(TEST_LDADD)

tests_unit_test_config_SOURCES = tests/unit/test_config.c tests/unit/runner.c tests/unit/runner.h
tests_unit_test_config_CPPFLAGS = $(TEST_CPPFLAGS)
tests_unit_test_config_LDADD = $(TEST_LDADD)

tests_unit_test_loader_SOURCES = tests/unit/test_loader.c tests/unit/runner.c tests/unit/runner.h
tests_unit_test_loader_CPPFLAGS = $(TEST_CPPFLAGS)
tests_unit_test_loader_LDADD = $(TEST_LDADD)

tests_unit_test_model_SOURCES = tests/unit/test_model.c tests/unit/runner.c tests/unit/runner.h
tests_unit_test_model_CPPFLAGS = $(TEST_CPPFLAGS)
tests_unit_test_model_LDADD = $(TEST_LDADD)

tests_unit_test_npy_SOURCES = tests/unit/test_npy.c tests/unit/runner.c tests/unit/runner.h
tests_unit_test_npy_CPPFLAGS = $(TEST_CPPFLAGS)
tests_unit_test_npy_LDADD = $(TEST_LDADD)

tests_unit_test_params_SOURCES = tests/unit/test_params.c tests/unit/runner.c tests/unit/runner.h
tests_unit_test_params_CPPFLAGS = $(TEST_CPPFLAGS)
tests_unit_test_params_LDADD = $(TEST_LDADD)

tests_unit_test_pipeline_SOURCES = tests/unit/test_pipeline.c tests/unit/runner.c tests/unit/runner.h
tests_unit_test_pipeline_CPPFLAGS = $(TEST_CPPFLAGS)
tests_unit_test_pipeline_LDADD = $(TEST_LDADD)

tests_unit_test_quant_SOURCES = tests/unit/test_quant.c tests/unit/runner.c tests/unit/runner.h
tests_unit_test_quant_CPPFLAGS = $(TEST_CPPFLAGS)
tests_unit_test_quant_LDADD = $(TEST_LDADD)

tests_unit_test_quantize_SOURCES = tests/unit/test_quantize.c tests/unit/runner.c tests/unit/runner.h
tests_unit_test_quantize_CPPFLAGS = $(TEST_CPPFLAGS)
tests_unit_test_quantize_LDADD = runtime/libtmrt.la $(TEST_LDADD)

tests_unit_test_tmrt_SOURCES = tests/unit/test_tmrt.c tests/unit/runner.c tests/unit/runner.h
tests_unit_test_tmrt_CPPFLAGS = $(TEST_CPPFLAGS)
tests_unit_test_tmrt_LDADD = runtime/libtmrt.la $(TEST_LDADD)

tests_unit_test_tmrt_ops_SOURCES = tests/unit/test_tmrt_ops.c tests/unit/runner.c tests/unit/runner.h
tests_unit_test_tmrt_ops_CPPFLAGS = $(TEST_CPPFLAGS)
tests_unit_test_tmrt_ops_LDADD = runtime/libtmrt.la $(TEST_LDADD)

# The same kernel tests against libtmrt built with -DTMRT_CONV_COL=0
# (no window buffer on the stack: every convolution on its one-pixel
# path), linked into the program so that its kernels are the ones run.
tests_libtmrt_nobuf_la_SOURCES = $(runtime_libtmrt_la_SOURCES)
tests_libtmrt_nobuf_la_CPPFLAGS = $(AM_CPPFLAGS) -DTMRT_CONV_COL=0
tests_libtmrt_nobuf_la_CFLAGS = $(runtime_libtmrt_la_CFLAGS)
tests_unit_test_tmrt_ops_nobuf_SOURCES = $(tests_unit_test_tmrt_ops_SOURCES)
tests_unit_test_tmrt_ops_nobuf_CPPFLAGS = $(TEST_CPPFLAGS)
tests_unit_test_tmrt_ops_nobuf_LDADD = tests/libtmrt_nobuf.la $(TEST_LDADD)

# -export-dynamic: the plugins it loads must log through this binary's
# copy of the core (whose handler the test sets), not libtmpipe.so's.
tests_unit_test_transforms_SOURCES = tests/unit/test_transforms.c tests/unit/runner.c tests/unit/runner.h
tests_unit_test_transforms_CPPFLAGS = $(TEST_CPPFLAGS)
tests_unit_test_transforms_LDFLAGS = -export-dynamic
tests_unit_test_transforms_LDADD = $(TEST_LDADD)

tests_unit_test_lower_SOURCES = tests/unit/test_lower.c tests/unit/runner.c tests/unit/runner.h
tests_unit_test_lower_CPPFLAGS = $(TEST_CPPFLAGS)
tests_unit_test_lower_LDADD = runtime/libtmrt.la $(TEST_LDADD)

# -export-dynamic: as test_transforms (the plugins' tm_log reaches the
# test's handler).
tests_unit_test_dfq_SOURCES = tests/unit/test_dfq.c tests/unit/runner.c tests/unit/runner.h
tests_unit_test_dfq_CPPFLAGS = $(TEST_CPPFLAGS)
tests_unit_test_dfq_LDFLAGS = -export-dynamic
tests_unit_test_dfq_LDADD = runtime/libtmrt.la $(TEST_LDADD)

tests_unit_test_verify_SOURCES = tests/unit/test_verify.c tests/unit/runner.c tests/unit/runner.h
tests_unit_test_verify_CPPFLAGS = $(TEST_CPPFLAGS)
tests_unit_test_verify_LDADD = runtime/libtmrt.la $(TEST_LDADD)

tests_unit_test_xor_SOURCES = tests/unit/test_xor.c tests/unit/runner.c tests/unit/runner.h
tests_unit_test_xor_CPPFLAGS = $(TEST_CPPFLAGS)
tests_unit_test_xor_LDADD = runtime/libtmrt.la $(TEST_LDADD)

# Fixture plugins for the loader tests: never installed.
FIXTURE_LDFLAGS = -module -avoid-version -shared -rpath /nowhere
check_LTLIBRARIES = \
	tests/plugins/bad_abi.la \
	tests/plugins/no_entry.la \
	tests/plugins/name_mismatch.la \
	tests/plugins/wrong_kind.la \
	tests/plugins/twin.la \
	tests/plugins/late_shift.la \
	tests/libtmrt_nobuf.la
tests_plugins_bad_abi_la_SOURCES = tests/plugins/bad_abi.c
tests_plugins_bad_abi_la_LDFLAGS = $(FIXTURE_LDFLAGS)
tests_plugins_bad_abi_la_LIBADD = core/libtmpipe.la
tests_plugins_no_entry_la_SOURCES = tests/plugins/no_entry.c
tests_plugins_no_entry_la_LDFLAGS = $(FIXTURE_LDFLAGS)
tests_plugins_no_entry_la_LIBADD = core/libtmpipe.la
tests_plugins_name_mismatch_la_SOURCES = tests/plugins/name_mismatch.c
tests_plugins_name_mismatch_la_LDFLAGS = $(FIXTURE_LDFLAGS)
tests_plugins_name_mismatch_la_LIBADD = core/libtmpipe.la
tests_plugins_wrong_kind_la_SOURCES = tests/plugins/wrong_kind.c
tests_plugins_wrong_kind_la_LDFLAGS = $(FIXTURE_LDFLAGS)
tests_plugins_wrong_kind_la_LIBADD = core/libtmpipe.la
tests_plugins_twin_la_SOURCES = tests/plugins/twin.c
tests_plugins_twin_la_LDFLAGS = $(FIXTURE_LDFLAGS)
tests_plugins_twin_la_LIBADD = core/libtmpipe.la
tests_plugins_late_shift_la_SOURCES = tests/plugins/late_shift.c
tests_plugins_late_shift_la_LDFLAGS = $(FIXTURE_LDFLAGS)
tests_plugins_late_shift_la_LIBADD = core/libtmpipe.la

E2E_TESTS = \
	tests/e2e/cli.test \
	tests/e2e/xor.test \
	tests/e2e/bad_pipelines.test \
	tests/e2e/symbols.test \
	tests/e2e/manpage.test \
	tests/e2e/cnn.test \
	tests/e2e/tinymind.test \
	tests/e2e/verify.test \
	tests/e2e/header.test \
	tests/e2e/header_cnn.test \
	tests/e2e/digits.test \
	tests/e2e/onnx.test

TESTS = $(UNIT_TESTS) $(ONNX_TESTS) $(E2E_TESTS)
TEST_EXTENSIONS = .test
TEST_LOG_COMPILER = $(SHELL)
# The tests find the build tree's plugins and read no user configuration.
AM_TESTS_ENVIRONMENT = \
	TMPIPE_PLUGIN_PATH='$(abs_top_builddir)/plugins/.libs'; \
	TMPIPE_FIXTURE_DIR='$(abs_top_builddir)/tests/plugins/.libs'; \
	TMPIPE_BUILDDIR='$(abs_top_builddir)'; \
	XDG_CONFIG_HOME='$(abs_top_builddir)/tests/no-xdg'; \
	LD_LIBRARY_PATH='$(abs_top_builddir)/core/.libs'$${LD_LIBRARY_PATH:+:$$LD_LIBRARY_PATH}; \
	TMPIPE_NO_SYSTEM_CONFIG=1; \
	CC='$(CC)'; LDFLAGS='$(LDFLAGS)'; \
	export CC LDFLAGS; \
	export TMPIPE_PLUGIN_PATH TMPIPE_FIXTURE_DIR TMPIPE_BUILDDIR \
		XDG_CONFIG_HOME TMPIPE_NO_SYSTEM_CONFIG LD_LIBRARY_PATH; \
	unset TMPIPE_CONFIG;
# Valgrind or a sanitizer runner can be put in front of every unit test:
#   make check LOG_COMPILER='libtool --mode=execute valgrind --error-exitcode=1 -q'

EXTRA_DIST += $(E2E_TESTS) tests/e2e/lib.sh tests/e2e/xor_model.h.golden \
	tests/e2e/xor_weights.hpp.golden
EXTRA_DIST += tests/data tests/gen/npy_fixtures.py tests/gen/ops_ref.py \
	tests/gen/observers_ref.py \
	tests/gen/cnn_ref.py tests/gen/transforms_ref.py tests/gen/dfq_ref.py \
	tests/gen/onnx_cnn.py tests/gen/onnx_fixtures.py
