#!/usr/bin/env bash
# The kernel built with AddressSanitizer + UndefinedBehaviorSanitizer, and the test
# suite run against it (a fresh venv; the project's own files install everything).
#
#     bash ci/sanitize.sh [pytest arguments...]     # default: the whole suite
#
# 1. `MFCY_SANITIZE=address,undefined pip install .` (setup.py adds
#    -fsanitize=address,undefined -fno-sanitize-recover=all -O1 -g; no bounds
#    checks, so the sanitizers see the kernel's raw memory accesses).
# 2. The build says it is sanitized (mfcy._sgd.sanitizers()) and links the runtimes.
# 3. A canary proves ASan is live: an index one row past the end of the factors,
#    handed straight to the kernel, must abort with a heap-buffer-overflow report.
# 4. The tests run with libasan preloaded (a Python extension cannot bring its own
#    ASan runtime: it must come first) and leak detection off (the interpreter
#    keeps objects alive at exit on purpose). Any report aborts the run.
#
# Report: the sanitizer list, the canary's first report line, pytest's summary.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
WORK=$(mktemp -d /tmp/mfcy-sanitize.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
export PIP_DISABLE_PIP_VERSION_CHECK=1 MPLBACKEND=Agg

CC=${CC:-gcc}
LIBASAN=$("$CC" -print-file-name=libasan.so)
[ -f "$LIBASAN" ] || { echo "sanitize: libasan not found for $CC"; exit 1; }
# libstdc++ preloaded right after libasan: python does not link it, and ASan's
# __cxa_throw interceptor must find it at start-up, or the first C++ exception of
# any extension (matplotlib's ft2font raises one on import) aborts the process.
LIBSTDCXX=$("$CC" -print-file-name=libstdc++.so.6)

python3 -m venv "$WORK/venv"
# shellcheck disable=SC1091
. "$WORK/venv/bin/activate"
python -m pip install -q --upgrade pip
MFCY_SANITIZE=address,undefined python -m pip install -q "$ROOT[test]"

export ASAN_OPTIONS=detect_leaks=0:abort_on_error=1:allocator_may_return_null=1:strict_string_checks=1:detect_stack_use_after_return=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
run() { LD_PRELOAD="$LIBASAN $LIBSTDCXX" "$@"; }

SO=$(cd "$WORK" && run python -c "import mfcy._sgd as s; print(s.__file__)")
echo "== sanitized kernel: $SO"
# Through a file: `ldd | grep -q` lets grep exit at the first match, and ldd,
# writing on into the closed pipe, may then fail the check (a CI rehearsal
# stopped here without a message).
ldd "$SO" > "$WORK/ldd.txt"
grep -E "libasan|libubsan" "$WORK/ldd.txt"
grep -q libasan "$WORK/ldd.txt" && grep -q libubsan "$WORK/ldd.txt"

(cd "$WORK" && run python -c "
import mfcy._sgd as s
assert s.sanitizers() == 'address,undefined', s.sanitizers()
assert not s.debug_build()
print('sanitizers:', s.sanitizers())")

echo "== canary: an out-of-bounds read must be reported"
set +e
(cd "$WORK" && run python -c "
import numpy as np, mfcy._sgd as s
P, Q = np.zeros((1000, 8)), np.zeros((10, 8))
users, items = np.array([1000], np.int32), np.array([0], np.int32)
s.predict_pairs(P, Q, np.zeros(1000), np.zeros(10), users, items, 0.0, False, np.empty(1))
print('no report')") > "$WORK/canary.log" 2>&1
status=$?
set -e
if [ "$status" -eq 0 ] || ! grep -q "AddressSanitizer: heap-buffer-overflow" "$WORK/canary.log"; then
    cat "$WORK/canary.log"; echo "sanitize: ASan did not catch the canary"; exit 1
fi
grep -m1 "AddressSanitizer: heap-buffer-overflow" "$WORK/canary.log"

echo "== the test suite under ASan + UBSan"
start=$(date +%s)
# `pytest`, not `python -m pytest`: -m would put the source tree first on sys.path.
run pytest -q -p no:cacheprovider "${@:-tests}"
echo "sanitizer run finished in $(( $(date +%s) - start )) s"
