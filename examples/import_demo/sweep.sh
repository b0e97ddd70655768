#!/bin/sh
# How much does the int8 error of the import_demo depend on which 64
# samples calibrate it? Runs a pipeline once per calibration draw
# (calib_draw.py K, K = 0..N-1; calib.npy is draw 0) on the same 16
# held-out samples and prints max and mean |int8 - float| per draw, then
# the median, the worst and how many draws beat the importer's 0.0043.
#
#	examples/import_demo/sweep.sh [N [PIPELINE]]
#
# N defaults to 20, PIPELINE to pipeline.yaml beside this script (its
# verify tolerance is lifted: every draw is measured, none fails).
# TMPIPE names the tmpipe to run (default: tmpipe on PATH; in a build
# tree also set TMPIPE_PLUGIN_PATH=build/gcc/plugins/.libs).
set -eu

here=$(cd "$(dirname "$0")" && pwd)
n=${1:-20}
pipeline=${2:-$here/pipeline.yaml}
tmpipe=${TMPIPE:-tmpipe}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# A copy of the example: the pipeline's relative paths (weights, the
# held-out samples, its outputs) resolve inside it, so the sweep writes
# nothing here.
cp -R "$here/weights" "$here/holdout.npy" "$tmp/"
cp "$pipeline" "$tmp/pipeline.yaml"

echo "draw  max |err|  mean |err|"
k=0
while [ "$k" -lt "$n" ]; do
	/usr/bin/python3 "$here/calib_draw.py" "$k" "$tmp/calib.npy"
	"$tmpipe" run "$tmp/pipeline.yaml" --set verify.tolerance=1 \
		>"$tmp/log" 2>&1 || {
		cat "$tmp/log" >&2
		exit 1
	}
	# The first "out" row: the parity table's (the per-tensor table
	# follows it).
	awk -v k="$k" '/^  out / { printf "%4d  %9s  %10s\n", k, $2, $3; exit }' \
		"$tmp/log" | tee -a "$tmp/table"
	k=$((k + 1))
done
# Medians of both columns, the worst maximum, and the count below 0.0043.
awk '
function median(a, n,   i, j, t) {
	for (i = 2; i <= n; i++)	# insertion sort, n is small
		for (j = i; j > 1 && a[j - 1] > a[j]; j--) {
			t = a[j]; a[j] = a[j - 1]; a[j - 1] = t
		}
	return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
{ mx[++c] = $2 + 0; mn[c] = $3 + 0; if ($2 + 0 > worst) worst = $2 + 0; if ($2 + 0 < 0.0043) below++ }
END {
	printf "median max |err| %.6f (worst %.6f), median mean |err| %.6f; %d of %d draws below the importer'"'"'s 0.0043\n",
	       median(mx, c), worst, median(mn, c), below, c
}' "$tmp/table"
