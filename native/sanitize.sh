#!/usr/bin/env bash
# The native addons built with AddressSanitizer and UndefinedBehaviorSanitizer, and the tests that
# drive them run against that build: out-of-bounds reads and writes, use after free, and undefined
# behaviour (overflow, misaligned loads, bad shifts) in native/ stop the test with a report.
# The build goes to native/<addon>/build-sanitize/Release (the tests pick it through
# NETBOOT_NATIVE_BUILD=build-sanitize); the regular build in native/<addon>/build is left alone.
# Node itself is not instrumented, so GCC's ASan runtime is preloaded (LD_PRELOAD) to come first;
# leak checking is off (it would report Node's own allocations at exit). Needs gcc (libasan and
# libubsan come with it), node-gyp (with npm) and Node's headers, as native/build.mjs does.
# Usage: native/sanitize.sh [test files...] (default: the native test files). The preload reaches
# every process the tests start: test files that run foreign programs (curl, tftp clients) fail
# here for that reason alone, so pass only files whose children are Node.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

node_bin=$(command -v node)
prefix=$(cd "$(dirname "$node_bin")/.." && pwd)
gyp=""
for c in "${npm_config_node_gyp:-}" "$prefix/lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js" /usr/share/nodejs/node-gyp/bin/node-gyp.js /usr/lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js; do
  if [ -n "$c" ] && [ -f "$c" ]; then gyp=$c; break; fi
done
if [ -z "$gyp" ]; then echo "native/sanitize.sh: node-gyp not found (it ships with npm)" >&2; exit 1; fi
nodedir=()
if [ -f "$prefix/include/node/node_api.h" ]; then nodedir=(--nodedir "$prefix"); fi
libasan=$(gcc -print-file-name=libasan.so)
if [ ! -f "$libasan" ]; then echo "native/sanitize.sh: gcc's libasan.so not found (gcc installs it as libasan8 or the like)" >&2; exit 1; fi

# node-gyp builds in <addon>/build: build a copy of native/ (the addons share native/common).
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
tar -C native --exclude='./*/build' --exclude='./*/build-sanitize' -cf - . | tar -C "$work" -xf -
flags="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer -g"
for addon in udp-link udp-batch chunking; do
  CFLAGS="$flags" LDFLAGS="-fsanitize=address,undefined" node "$gyp" rebuild --release --directory "$work/$addon" "${nodedir[@]}" >"$work/$addon.log" 2>&1 || {
    cat "$work/$addon.log" >&2
    echo "native/sanitize.sh: building $addon failed" >&2
    exit 1
  }
  mkdir -p "native/$addon/build-sanitize/Release"
  cp "$work/$addon"/build/Release/*.node "native/$addon/build-sanitize/Release/"
done
echo "native/sanitize.sh: ASan/UBSan build in native/*/build-sanitize ($(basename "$libasan") preloaded)"

tests=("$@")
if [ ${#tests[@]} -eq 0 ]; then
  tests=(test/mtftp/native-link.test.ts test/packages/native-chunking.test.ts test/server/batch-socket.test.ts test/server/native-batch-faults.test.ts)
fi
# halt_on_error: the first report fails the test (the test process dies with ASan's exit code).
export NETBOOT_NATIVE_BUILD=build-sanitize
export ASAN_OPTIONS="detect_leaks=0:halt_on_error=1:abort_on_error=0:exitcode=86:print_summary=1"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:exitcode=87"
LD_PRELOAD="$libasan" node --import tsx --test --test-force-exit "${tests[@]/#/$repo/}"
