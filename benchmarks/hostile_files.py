"""Peak memory of loading hostile model files, against loading a small honest one.

Each file is loaded in a fresh subprocess (``MatrixFactorization.load``) that
reports how it ended and its peak RSS (``VmHWM`` of ``/proc/self/status``, and
``resource.getrusage().ru_maxrss``, which on Linux also counts the parent's RSS
at the fork);
the baseline is the same subprocess loading the small honest model the
hostile files are made from. A large honest model shows what the streaming
checksum costs (nothing beyond the arrays themselves).

Usage::

    python benchmarks/hostile_files.py [--bomb-gib 4] [--honest-mb 256]
"""

import argparse
import io
import os
import subprocess
import sys
import tempfile
import textwrap
import zipfile

import numpy as np

from mfcy import MatrixFactorization

CHILD = textwrap.dedent("""
    import resource, sys
    from mfcy import MatrixFactorization
    from mfcy.io import ModelFileError
    try:
        MatrixFactorization.load(sys.argv[1])
        outcome = "loaded"
    except ModelFileError as exc:
        outcome = "ModelFileError: " + str(exc).split("' ", 1)[-1][:90]
    except BaseException as exc:
        outcome = type(exc).__name__ + ": " + str(exc)[:90]
    # VmHWM: the peak RSS of this process image. ru_maxrss also counts the
    # parent's RSS at the fork (Linux carries it across exec).
    with open("/proc/self/status") as status:
        hwm = next(int(line.split()[1]) for line in status if line.startswith("VmHWM"))
    print(hwm // 1024, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024, outcome)
""")


def peak(path):
    # From the file's directory: a source checkout in the working directory
    # would shadow the installed package.
    result = subprocess.run([sys.executable, "-c", CHILD, path], capture_output=True,
                            text=True, timeout=3600, cwd=os.path.dirname(path))
    if result.returncode != 0:
        return None, f"exit {result.returncode}: {result.stderr.strip()[-200:]}"
    mib, maxrss, outcome = result.stdout.strip().split(" ", 2)
    return (int(mib), int(maxrss)), outcome


def members(path):
    with np.load(path, allow_pickle=False) as archive:
        return {name: archive[name] for name in archive.files}


def npy(arr):
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, arr, allow_pickle=False)
    return buffer.getvalue()


def write_bomb(path, honest, n_bytes):
    """``user_factors`` replaced by ``n_bytes`` of zeros, deflated (level 9) as a stream."""
    with zipfile.ZipFile(path, "w") as z:
        for name, arr in members(honest).items():
            if name != "user_factors":
                z.writestr(f"{name}.npy", npy(arr))
    shape = (n_bytes // 12, 3)
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": "<f4", "fortran_order": False, "shape": shape})
    zeros = bytes(1 << 24)
    with zipfile.ZipFile(path, "a", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        with z.open("user_factors.npy", "w", force_zip64=True) as member:
            member.write(header.getvalue())
            left = shape[0] * shape[1] * 4
            while left:
                member.write(zeros[:min(left, len(zeros))])
                left -= min(left, len(zeros))


def write_huge_header(path, honest):
    """``item_factors``' header claims 800 GB; the member holds the real (small) data."""
    with zipfile.ZipFile(path, "w") as z:
        for name, arr in members(honest).items():
            data = npy(arr)
            if name == "item_factors":
                header = io.BytesIO()
                np.lib.format.write_array_header_1_0(
                    header, {"descr": "<f4", "fortran_order": False,
                             "shape": (800 * 10**9 // 12, 3)})
                data = header.getvalue() + data[128:]
            z.writestr(f"{name}.npy", data)


def honest_model(n_users, n_factors, rng):
    X = np.column_stack([rng.integers(0, 40, 400), rng.integers(0, 30, 400)])
    model = MatrixFactorization(n_factors=n_factors, n_epochs=2, random_state=0)
    model.fit(X, rng.uniform(1, 5, 400))
    if n_users > len(model.users_):
        # Grown by hand to n_users users without ratings (a fit of that size
        # would take minutes; loading only sees arrays of the right shapes).
        model.users_ = np.arange(n_users)
        model.user_factors_ = rng.standard_normal((n_users, n_factors)).astype(np.float32)
        model.user_bias_ = np.zeros(n_users, dtype=np.float32)
        model._seen_indptr = np.zeros(n_users + 1, dtype=np.int64)
        model._seen_items = np.zeros(0, dtype=np.int32)
    return model


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bomb-gib", type=float, default=4.0)
    parser.add_argument("--honest-mb", type=float, default=256.0)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        small = os.path.join(tmp, "small.npz")
        honest_model(0, 3, rng).save(small)
        k = 32
        big = os.path.join(tmp, "big.npz")
        honest_model(int(args.honest_mb * 1e6 / (4 * k)), k, rng).save(big)
        bomb = os.path.join(tmp, "bomb.npz")
        write_bomb(bomb, small, int(args.bomb_gib * (1 << 30)))
        header = os.path.join(tmp, "header.npz")
        write_huge_header(header, small)
        (base, _), _ = peak(small)
        print(f"baseline: small honest model, peak RSS {base} MiB")
        print(f"{'file':<34} {'size':>9} {'peak MiB':>9} {'x base':>7} {'ru_maxrss':>9}  "
              "outcome")
        for label, path in [("small honest model", small),
                            (f"honest model, {args.honest_mb:g} MB of factors", big),
                            (f"zip bomb declaring {args.bomb_gib:g} GiB", bomb),
                            ("npy header claiming 800 GB", header)]:
            mib, outcome = peak(path)
            size = os.path.getsize(path) / 1e6
            hwm, maxrss = mib if mib else ("-", "-")
            ratio = f"{hwm / base:.2f}" if mib else "-"
            print(f"{label:<34} {size:>7.1f}MB {hwm:>9} {ratio:>7} {maxrss:>9}  {outcome}")


if __name__ == "__main__":
    main()
