#!/usr/bin/env bash
# The kernel's C code on its own (mfcy/_sgd_kernel.h and its templates), no Python build:
#
# 1. -Wall -Wextra -Werror under gcc and clang, for x86-64 and aarch64, with the
#    vector loops and with the portable ones (MFCY_PORTABLE=1); and the header of
#    the other kernels (mfcy/_models_kernel.h, NMF's passes) on its own.
# 2. The C test driver tests/c/kernel_driver.c built natively with gcc, clang and
#    gcc -DMFCY_PORTABLE=1, checked against the Python oracle (tests/c/check_driver.py;
#    all three copies of the loops on x86-64: SSE2, AVX2+FMA and AVX-512F, the last
#    where the CPU has it, at every k); the portable build's output must be
#    bit-identical to the SSE2 baseline's.
# 3. The driver cross-compiled for aarch64 (gcc and clang, static), run under
#    qemu-aarch64 and checked against the oracle; the x86 AVX2 and AVX-512 copies must be absent
#    from the aarch64 binaries and the dot product must use NEON registers.
#
# Needs: gcc, clang, gcc-aarch64-linux-gnu (+ libc6-dev-arm64-cross), qemu-user, and
# a python with numpy, pytest and mfcy installed (PYTHON, default: python).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
OUT=$(mktemp -d /tmp/mfcy-ckernel.XXXXXX)
trap 'rm -rf "$OUT"' EXIT
FLAGS=(-std=c99 -O2 -Wall -Wextra -Werror -fopenmp-simd -Imfcy)

echo "-- warnings: the header under every compiler and target, -Wall -Wextra -Werror"
for cc in gcc clang aarch64-linux-gnu-gcc "clang --target=aarch64-linux-gnu"; do
    for portable in 0 1; do
        # shellcheck disable=SC2086
        $cc "${FLAGS[@]}" -DMFCY_PORTABLE=$portable -c tests/c/kernel_driver.c -o "$OUT/w.o"
        echo "   $cc MFCY_PORTABLE=$portable: clean"
    done
    # shellcheck disable=SC2086
    $cc "${FLAGS[@]}" -c tests/c/models_header.c -o "$OUT/m.o"
    echo "   $cc, mfcy/_models_kernel.h: clean"
done

echo "-- native drivers against the oracle"
gcc "${FLAGS[@]}" tests/c/kernel_driver.c -o "$OUT/driver-gcc" -lm
clang "${FLAGS[@]}" tests/c/kernel_driver.c -o "$OUT/driver-clang" -lm
gcc "${FLAGS[@]}" -DMFCY_PORTABLE=1 tests/c/kernel_driver.c -o "$OUT/driver-portable" -lm
for exe in "$OUT/driver-gcc" "$OUT/driver-clang"; do
    n_zmm=$(objdump -d "$exe" | grep -c 'zmm' || true)
    [ "$n_zmm" -gt 0 ] || { echo "$exe: no AVX-512 (zmm) instruction in the loops"; exit 1; }
    "$PY" tests/c/check_driver.py "$exe" --isa 0 1 2
done
"$PY" tests/c/check_driver.py "$OUT/driver-gcc" --output "$OUT/sse2.txt"
"$PY" tests/c/check_driver.py "$OUT/driver-portable" --output "$OUT/portable.txt"
cmp "$OUT/sse2.txt" "$OUT/portable.txt"
echo "   portable loops: bit-identical to the SSE2 baseline"

echo "-- aarch64: cross builds under qemu-aarch64 against the oracle"
aarch64-linux-gnu-gcc "${FLAGS[@]}" -static tests/c/kernel_driver.c -o "$OUT/driver-a64-gcc" -lm
clang --target=aarch64-linux-gnu "${FLAGS[@]}" -static tests/c/kernel_driver.c \
    -o "$OUT/driver-a64-clang" -lm
for exe in "$OUT/driver-a64-gcc" "$OUT/driver-a64-clang"; do
    if aarch64-linux-gnu-nm "$exe" | grep -qiE 'avx2|avx512'; then
        echo "$exe contains an x86 copy (AVX2 or AVX-512)"; exit 1
    fi
    n_neon=$(aarch64-linux-gnu-objdump -d "$exe" | grep -cE 'fm(la|ul)[[:space:]]+v[0-9]+\.(4s|2d)' || true)
    [ "$n_neon" -gt 0 ] || { echo "$exe: no NEON multiply in the loops"; exit 1; }
    echo "   $(basename "$exe"): no AVX2 or AVX-512 copy, $n_neon NEON vector multiplies"
    QEMU_LD_PREFIX=/usr/aarch64-linux-gnu "$PY" tests/c/check_driver.py qemu-aarch64 "$exe"
done
