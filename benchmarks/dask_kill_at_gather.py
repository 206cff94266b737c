"""Issue 18 item 3: kill a worker after an epoch's tasks finished, before the driver gathers them.

Prints how long the fit took from the kill to the restart warning, and whether
the restarted model is bit-identical to a fit without the kill. Run:

    python benchmarks/dask_kill_at_gather.py
"""

import os
import signal
import time
import warnings

import numpy as np
import pandas as pd
import distributed

import mfcy.dask
from mfcy import MatrixFactorization


def main():
    rng = np.random.default_rng(0)
    n = 20000
    frame = pd.DataFrame({"user": rng.integers(0, 1000, n), "item": rng.integers(0, 500, n),
                          "rating": rng.normal(3.5, 1.0, n)})
    params = dict(n_factors=8, n_epochs=6, n_blocks=2, random_state=1)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        pids = client.run(os.getpid)
        real_wait, killed = mfcy.dask._wait, {}

        def wait(client_, futures, owners):
            real_wait(client_, futures, owners)
            if not killed and any("mfcy-end-e3-" in str(f.key) for f in futures):
                killed["at"] = time.perf_counter()
                os.kill(pids[owners[0]], signal.SIGKILL)

        mfcy.dask._wait = wait
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                model = mfcy.dask.fit(client, frame, MatrixFactorization(**params),
                                      checkpoint_every=2)
                restarted = time.perf_counter()
        finally:
            mfcy.dask._wait = real_wait
        warned = [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]
        client.wait_for_workers(2, timeout=60)
        clean = mfcy.dask.fit(client, frame, MatrixFactorization(**params))
    print("warning:", warned[0] if warned else None)
    print(f"kill -> fit done (restart + 3 epochs replayed/run): "
          f"{restarted - killed['at']:.2f} s")
    same = all(np.array_equal(getattr(model, a), getattr(clean, a))
               for a in ("user_factors_", "item_factors_", "user_bias_", "item_bias_"))
    print("bit-identical to the uninterrupted fit:", same)


if __name__ == "__main__":
    main()
