"""The estimators SVDpp, NMF and BaselineOnly at their defaults on the reference 90/10 splits.

``python benchmarks/estimators_split.py``: one thread, seed 0, predictions
clipped to the training scale; prints test RMSE and fit seconds (one run each:
noisy on a shared machine). The kernel-level figures are
``benchmarks/models_kernel.py``'s.
"""

import time

import numpy as np

from _common import ML1M, ML100K, load_triples, reference_split

import mfcy


def main():
    for label, path in (("ML-100K", ML100K), ("ML-1M-star", ML1M)):
        users, items, ratings = load_triples(path)[:3]
        train, test = reference_split(len(ratings))
        for name in ("SVDpp", "NMF", "BaselineOnly"):
            model = getattr(mfcy, name)(n_threads=1, random_state=0)
            start = time.perf_counter()
            model.fit(np.column_stack([users[train], items[train]]), ratings[train])
            seconds = time.perf_counter() - start
            predicted = model.predict(np.column_stack([users[test], items[test]]), clip=True)
            rmse = float(np.sqrt(np.mean((predicted - ratings[test]) ** 2)))
            print(f"{label} {name}: test RMSE {rmse:.4f}, fit {seconds:.2f} s (1 thread)",
                  flush=True)


if __name__ == "__main__":
    main()
