#!/bin/sh
# make installcheck: the installed tmpipe, as a user and a plugin author
# meet it. Run by Makefile.am with DESTDIR, bindir, libdir, pkglibdir,
# exampledir, srcdir and CC in the environment; DESTDIR may be empty (a
# real install, as make distcheck does).
set -eu
work=$(mktemp -d "${TMPDIR:-/tmp}/tmpipe-installcheck.XXXXXX")
trap 'rm -rf "$work"' EXIT
tmpipe="$DESTDIR$bindir/tmpipe"
export TMPIPE_NO_SYSTEM_CONFIG=1
export LD_LIBRARY_PATH="$DESTDIR$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
unset TMPIPE_PLUGIN_PATH TMPIPE_CONFIG
# Staged installs are not where the binary looks by itself.
if [ -n "$DESTDIR" ]; then
	TMPIPE_PLUGIN_PATH="$DESTDIR$pkglibdir"
	export TMPIPE_PLUGIN_PATH
fi

# 1. The installed plugins are found.
"$tmpipe" plugins >"$work/plugins"
for p in c_header minmax npy; do
	grep -q "^$p .*$DESTDIR$pkglibdir/$p.so\$" "$work/plugins" || {
		echo "installcheck: plugin $p not listed:"
		cat "$work/plugins"
		exit 1
	}
done
echo "installcheck: the installed tmpipe lists c_header, minmax, npy from $DESTDIR$pkglibdir"

# 2. The installed XOR example runs from a copy.
cp -r "$DESTDIR$exampledir" "$work/xor"
chmod -R u+w "$work/xor"
"$tmpipe" -q run "$work/xor/pipeline.yaml"
grep -q '^#define XOR_FC2_ZERO_POINT (-1)$' "$work/xor/out/xor_model.h"
echo "installcheck: the installed XOR example runs"

# 3. A third-party observer, the one in tmpipe-plugin(7), builds with the
#    installed header and pkg-config file and nothing else, and loads.
awk '/^\.\\" source: absmax.c/ { on = 1; next }
     on && /^\.EX/ { inex = 1; next }
     on && inex && /^\.EE/ { exit }
     on && inex { print }' "$srcdir/man/tmpipe-plugin.7" |
	sed -e 's/\\-/-/g' -e 's/\\e/\\/g' -e 's/\\(aq/'"'"'/g' -e 's/\\&//g' \
	>"$work/absmax.c"
PKG_CONFIG_PATH="$DESTDIR$libdir/pkgconfig"
PKG_CONFIG_SYSROOT_DIR="$DESTDIR"
export PKG_CONFIG_PATH PKG_CONFIG_SYSROOT_DIR
mkdir "$work/obs"
# shellcheck disable=SC2046
${CC:-cc} -std=c99 -Wall -Wextra -Werror -fPIC -shared -fvisibility=hidden \
	-o "$work/obs/absmax.so" "$work/absmax.c" \
	$(pkg-config --cflags --libs tmpipe)
"$tmpipe" -p "$work/obs" plugins absmax >"$work/absmax.out"
grep -q '^kind:        observer$' "$work/absmax.out"
[ "$(pkg-config --variable=plugindir tmpipe)" = "$pkglibdir" ] || {
	echo "installcheck: tmpipe.pc plugindir is $(pkg-config --variable=plugindir tmpipe)"
	exit 1
}
echo "installcheck: an out-of-tree observer builds with pkg-config tmpipe and loads"
