"""Build script for mfcy's compiled kernel.

Metadata lives in ``pyproject.toml``; this file only describes the extension
``mfcy._sgd`` and the two build switches read from the environment:

``MFCY_OPENMP``
    ``1`` requires OpenMP (the build fails without it), ``0`` forces a serial
    build, unset probes the compiler and falls back to serial.
``MFCY_PORTABLE``
    ``1`` builds the plain-C copy of the loops (no GCC/clang vector extensions,
    no x86 target attributes: the code MSVC compiles) with any compiler, so
    that path runs in CI; ``mfcy.build_info()["kernel_path"]`` is then
    ``"portable"``.
``MFCY_DEBUG``
    ``1`` turns Cython's bounds checks back on in the kernel, negative indices
    included (and drops ``-O3`` for ``-O1 -g``), for the hardening test runs;
    ``mfcy._sgd.debug_build()`` then returns True.
``MFCY_SANITIZE``
    e.g. ``address,undefined``: adds ``-fsanitize=...`` to compile and link
    flags (used by ``ci/sanitize.sh``; implies ``-O1 -g``);
    ``mfcy._sgd.sanitizers()`` then returns that string.
"""

import os
import shutil
import subprocess
import sys
import tempfile

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext


def _env_flag(name):
    value = os.environ.get(name, "").strip()
    if value not in ("", "0", "1"):
        sys.exit(f"{name} must be 0 or 1, not {value!r}")
    return None if value == "" else value == "1"


OPENMP = _env_flag("MFCY_OPENMP")
PORTABLE = bool(_env_flag("MFCY_PORTABLE"))
DEBUG = bool(_env_flag("MFCY_DEBUG"))
SANITIZE = os.environ.get("MFCY_SANITIZE", "").strip()
if SANITIZE and not all(part.isidentifier() for part in SANITIZE.split(",")):
    sys.exit(f"MFCY_SANITIZE must be a comma-separated list such as address,undefined, "
             f"not {SANITIZE!r}")

_NO_COMPILER = """
mfcy: no working C compiler was found ({detail}).

mfcy's kernel is compiled C. Either install a binary wheel (pip install mfcy on
a platform with wheels: Linux x86-64/aarch64, macOS, Windows; pip install
--only-binary mfcy mfcy refuses to build), or install a C compiler and retry:

  Debian/Ubuntu:  sudo apt-get install build-essential python3-dev
                  (optional, for threads with clang: libomp-dev)
  Fedora/RHEL:    sudo dnf install gcc python3-devel
  macOS:          xcode-select --install
                  (optional, for threads: brew install libomp)
  Windows:        install "Build Tools for Visual Studio" with the
                  "Desktop development with C++" workload
  conda:          conda install -c conda-forge c-compiler

A different compiler can be chosen with the CC environment variable, e.g.
CC=clang pip install mfcy.
"""

_OPENMP_PROBE = r"""
#include <omp.h>
int main(void) {
    int n = 0;
    #pragma omp parallel reduction(+:n)
    n += 1;
    return n > 0 ? 0 : 1;
}
"""


class BuildExt(build_ext):
    """``build_ext`` that probes for OpenMP and picks portable flags."""

    def _compiles(self, source, extra_args):
        # Compile *and link* a probe: a compiler that accepts -fopenmp but has no
        # runtime library (e.g. Apple clang without libomp) must count as "no".
        tmp = tempfile.mkdtemp(prefix="mfcy-probe-")
        try:
            src = os.path.join(tmp, "probe.c")
            with open(src, "w") as f:
                f.write(source)
            objs = self.compiler.compile([src], output_dir=tmp, extra_postargs=extra_args)
            self.compiler.link_executable(objs, os.path.join(tmp, "probe"),
                                          extra_postargs=extra_args)
            return True
        except Exception:
            return False
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def _require_compiler(self):
        # Without this, a missing compiler surfaces as setuptools' generic
        # "command ... failed with exit code 1" deep inside pip's output.
        tmp = tempfile.mkdtemp(prefix="mfcy-probe-")
        try:
            src = os.path.join(tmp, "probe.c")
            with open(src, "w") as f:
                f.write("int mfcy_probe(void) { return 0; }\n")
            self.compiler.compile([src], output_dir=tmp)
        except Exception as e:  # CompileError, or the executable is missing
            compiler = getattr(self.compiler, "compiler_so", None) or [self.compiler.compiler_type]
            reason = str(e).strip().splitlines()[-1] if str(e).strip() else type(e).__name__
            if "returned non-zero exit status" in reason:
                reason = "it exited with an error"
            detail = f"{compiler[0]!r} could not compile a one-line C file: {reason[-200:]}"
            sys.exit(_NO_COMPILER.format(detail=detail))
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def build_extensions(self):
        # Always compile: objects left in build/ by an earlier build with other
        # switches (MFCY_PORTABLE, CC, MFCY_DEBUG) must never be reused.
        self.force = True
        self._require_compiler()
        msvc = self.compiler.compiler_type == "msvc"
        if msvc:
            compile_args, simd_args, omp_args = ["/O2"], ["/openmp:experimental"], ["/openmp"]
        else:
            # -O3, no -march=native (a wheel must run on any x86-64) and no
            # -ffast-math (it breaks isfinite and reorders the lesson's sums).
            # -fopenmp-simd only honours `#pragma omp simd`; it needs no runtime.
            compile_args = ["-O1", "-g"] if (DEBUG or SANITIZE) else ["-O3"]
            simd_args, omp_args = ["-fopenmp-simd"], ["-fopenmp"]
            compile_args += ["-Wno-unused-function", "-Wno-unreachable-code"]
            if SANITIZE:
                # -fno-sanitize-recover: a UBSan finding aborts the run instead of
                # printing a line that a green test run would hide.
                compile_args += [f"-fsanitize={SANITIZE}", "-fno-sanitize-recover=all",
                                 "-fno-omit-frame-pointer"]

        use_openmp = False
        if OPENMP is not False:
            use_openmp = self._compiles(_OPENMP_PROBE, omp_args)
            if OPENMP and not use_openmp:
                sys.exit("MFCY_OPENMP=1 but the compiler cannot build and link OpenMP code")
        if not use_openmp and not msvc and not self._compiles("int main(void){return 0;}", simd_args):
            simd_args = []
        print(f"mfcy: building with OpenMP {'on' if use_openmp else 'off'}"
              f"{', portable loops' if PORTABLE else ''}"
              f"{', debug checks on' if DEBUG else ''}"
              f"{', sanitizers ' + SANITIZE if SANITIZE else ''}")

        for ext in self.extensions:
            ext.extra_compile_args = compile_args + (omp_args if use_openmp else simd_args)
            ext.extra_link_args = (omp_args if use_openmp else [])
            if SANITIZE:
                ext.extra_link_args = ext.extra_link_args + [f"-fsanitize={SANITIZE}"]
            # What the build was, readable at run time (debug_build(), sanitizers()):
            # the debug test run asserts it instead of trusting the environment.
            ext.define_macros = [("MFCY_HAVE_OPENMP", "1" if use_openmp else "0"),
                                 ("MFCY_DEBUG_BUILD", "1" if DEBUG else "0"),
                                 ("MFCY_PORTABLE", "1" if PORTABLE else "0"),
                                 ("MFCY_SANITIZE", f'"{SANITIZE}"')]
        super().build_extensions()


def _extensions():
    from Cython.Build import cythonize

    directives = {
        "language_level": 3,
        "boundscheck": DEBUG,
        # Never wraparound: with it on, a stray index -1 would silently read the
        # last row even in the debug build; off (with boundscheck) it is an
        # IndexError. The kernel uses -1 only as a guarded "unknown id" marker.
        "wraparound": False,
        "initializedcheck": DEBUG,
        "cdivision": True,
    }
    extensions = [
        # The SGD epochs, the error pass and predictions.
        Extension("mfcy._sgd", sources=["mfcy/_sgd.pyx"], include_dirs=["mfcy"],
                  depends=["mfcy/_sgd_kernel.h", "mfcy/_sgd_real.h", "mfcy/_sgd_range.h"]),
        # The counting sorts of a fit's set-up.
        Extension("mfcy._layout", sources=["mfcy/_layout.pyx"]),
        # The SVD++, NMF and baseline epochs and predictions.
        Extension("mfcy._models", sources=["mfcy/_models.pyx"], include_dirs=["mfcy"],
                  depends=["mfcy/_models_kernel.h"]),
    ]
    # force=True: the debug switch changes the generated C, not just the flags.
    return cythonize(extensions, compiler_directives=directives, force=True)


setup(ext_modules=_extensions(), cmdclass={"build_ext": BuildExt})
