# tmpipe end-to-end tests — shared helpers, sourced by each *.test.
# Exit codes follow automake: 0 pass, 1 fail, 77 skip, 99 hard error.

set -u
: "${TMPIPE_BUILDDIR:?run through make check}"
: "${srcdir:=.}"
TMPIPE="$TMPIPE_BUILDDIR/tmpipe"
SRC=$(cd "$srcdir" && pwd)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/tmpipe-e2e.XXXXXX") || exit 99
trap 'rm -rf "$WORK"' EXIT
passed=0
failed=0

pass() { passed=$((passed + 1)); echo "PASS: $1"; }
fail() { failed=$((failed + 1)); echo "FAIL: $1"; }

# expect NAME STATUS EXPECTED_STDERR -- tmpipe ARGS...
# Runs tmpipe and compares the exit status and the whole stderr.
expect() {
	name=$1 status=$2 want=$3
	shift 4
	"$TMPIPE" "$@" >"$WORK/out" 2>"$WORK/err"
	got=$?
	if [ "$got" -ne "$status" ]; then
		fail "$name: exit $got, expected $status"
		sed 's/^/  stderr: /' "$WORK/err"
		return
	fi
	if [ "$(cat "$WORK/err")" != "$want" ]; then
		fail "$name: stderr differs"
		echo "  expected: $want"
		sed 's/^/  got:      /' "$WORK/err"
		return
	fi
	pass "$name"
}

# Writes stdin to $WORK/$1.
pipeline() { cat >"$WORK/$1"; }

finish() {
	echo "$passed passed, $failed failed"
	[ "$failed" -eq 0 ]
	exit $?
}
