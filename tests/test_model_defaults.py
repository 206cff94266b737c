"""The defaults of SVDpp and NMF that differ from MatrixFactorization's: NMF's 50 epochs
(Surprise's) and no training-loss pass (``track_loss=False``) for either, with what a
default fit's ``history_`` then holds, what the loss pass would add, and the command
line, which keeps reporting the training RMSE; and SVD++'s epoch loop, which builds
its (costly) fitted state after an epoch only for a callback."""

import numpy as np
import pandas as pd
import pytest

import mfcy.svdpp
from mfcy import NMF, BaselineOnly, MatrixFactorization, SVDpp
from mfcy.cli import main


def _distinct_ratings(seed=0, n_users=40, n_items=30, density=0.5):
    """(pairs, ratings) on distinct (user, item) pairs, so no rating is averaged away,
    in a random order (any first rows make a training set of most users)."""
    rng = np.random.default_rng(seed)
    users, items = np.nonzero(rng.random((n_users, n_items)) < density)
    order = rng.permutation(len(users))
    return (np.column_stack([users, items])[order],
            rng.integers(1, 6, len(users)).astype(float))


def test_defaults_are_pinned():
    nmf, svdpp = NMF().get_params(), SVDpp().get_params()
    assert nmf["n_epochs"] == 50 and nmf["track_loss"] is False
    assert nmf["user_regularization"] == nmf["item_regularization"] == 0.08
    assert nmf["n_factors"] == 15
    assert svdpp["n_epochs"] == 20 and svdpp["track_loss"] is False
    # The SGD models keep their loss pass on by default.
    assert MatrixFactorization().get_params()["track_loss"] is True
    assert BaselineOnly().get_params()["track_loss"] is True


@pytest.mark.parametrize("cls, n_epochs", [(NMF, 50), (SVDpp, 20)])
def test_a_default_fit_records_the_sgd_error_and_no_training_loss(cls, n_epochs):
    X, y = _distinct_ratings()
    model = cls(random_state=0).fit(X, y)
    assert model.n_epochs_ == n_epochs
    assert sorted(model.history_) == ["epoch_seconds", "sgd_mse"]
    assert len(model.history_["sgd_mse"]) == n_epochs
    assert np.isfinite(model.history_["sgd_mse"]).all()
    assert model.history_["sgd_mse"][-1] < model.history_["sgd_mse"][0]


@pytest.mark.parametrize("make", [
    lambda **kw: NMF(n_factors=4, n_epochs=6, **kw),
    lambda **kw: NMF(n_factors=4, n_epochs=6, biased=True, **kw),
    lambda **kw: SVDpp(n_factors=4, n_epochs=6, **kw),
])
def test_the_loss_pass_only_adds_to_the_history(make):
    X, y = _distinct_ratings()
    off = make(random_state=0, dtype="float64").fit(X, y)
    on = make(random_state=0, dtype="float64", track_loss=True).fit(X, y)
    np.testing.assert_array_equal(on.user_factors_, off.user_factors_)
    np.testing.assert_array_equal(on.item_factors_, off.item_factors_)
    assert on.history_["sgd_mse"] == off.history_["sgd_mse"]
    assert sorted(on.history_) == ["epoch_seconds", "loss_seconds", "sgd_mse", "train_mse",
                                   "train_rmse"]
    # train_mse is the MSE of the unclipped predictions of the fitted model.
    errors = on.predict(X, clip=False) - y
    np.testing.assert_allclose(on.history_["train_mse"][-1], np.mean(errors ** 2),
                               rtol=1e-12, atol=0)
    np.testing.assert_allclose(on.history_["train_rmse"],
                               np.sqrt(on.history_["train_mse"]), rtol=1e-15, atol=0)


@pytest.mark.parametrize("biased", [False, True])
def test_nmf_sgd_mse_is_the_training_mse_one_epoch_behind(biased):
    # Both sides move from the factors met at the epoch's start, so the error the
    # epoch meets is the training error the previous epoch left (what the default
    # history_ shows instead of a loss pass).
    X, y = _distinct_ratings(seed=1)
    model = NMF(n_factors=4, n_epochs=8, biased=biased, random_state=0, dtype="float64",
                track_loss=True).fit(X, y)
    sgd, train = model.history_["sgd_mse"], model.history_["train_mse"]
    np.testing.assert_allclose(sgd[1:], train[:-1], rtol=1e-12, atol=0)


@pytest.mark.parametrize("cls", [NMF, SVDpp])
def test_plot_loss_of_a_default_fit_says_to_track_the_loss(cls):
    X, y = _distinct_ratings()
    model = cls(n_epochs=2, random_state=0).fit(X, y)
    with pytest.raises(ValueError, match=r"history has no 'train_mse' values "
                                         r"\(fit with track_loss=True\)"):
        model.plot_loss()


@pytest.mark.parametrize("cls", [NMF, SVDpp])
def test_verbose_default_fit_prints_the_sgd_error(cls, capsys):
    X, y = _distinct_ratings()
    model = cls(n_epochs=2, random_state=0, verbose=True).fit(X, y)
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[:3] for line in lines] == [["epoch", "1/2", "SGD"],
                                                    ["epoch", "2/2", "SGD"]]
    assert float(lines[-1].split()[-1]) == pytest.approx(model.history_["sgd_mse"][-1],
                                                         rel=1e-5)


@pytest.mark.parametrize("cls", [NMF, SVDpp])
def test_early_stopping_needs_no_loss_pass(cls):
    X, y = _distinct_ratings()
    model = cls(n_epochs=30, random_state=0, early_stopping=True, n_iter_no_change=1,
                tol=10.0).fit(X[:400], y[:400], validation=(X[400:], y[400:]))
    assert model.n_epochs_ == 2
    assert model.best_epoch_ == 1 + int(np.argmin(model.history_["val_rmse"]))
    assert "train_mse" not in model.history_ and len(model.history_["val_rmse"]) == 2


@pytest.mark.parametrize("algorithm", ["svdpp", "nmf"])
def test_command_line_still_reports_the_training_rmse(algorithm, tmp_path, capsys):
    X, y = _distinct_ratings()
    path = tmp_path / "r.csv"
    pd.DataFrame({"u": X[:, 0], "i": X[:, 1], "r": y}).to_csv(path, header=False, index=False)
    assert main(["fit", str(path), "--algorithm", algorithm, "--epochs", "2"]) == 0
    out = capsys.readouterr().out
    assert "epoch 1/2  train RMSE" in out and "epoch 2/2  train RMSE" in out
    assert "\ntrain RMSE " in out  # the summary line after the fit


def _count_state_builds(monkeypatch):
    calls = []
    build = mfcy.svdpp._SVDppRunner.state

    def counted(self, history, n_epochs, best_epoch):
        calls.append(n_epochs)
        return build(self, history, n_epochs, best_epoch)

    monkeypatch.setattr(mfcy.svdpp._SVDppRunner, "state", counted)
    return calls


def test_svdpp_builds_its_state_after_training_only(monkeypatch):
    X, y = _distinct_ratings()
    calls = _count_state_builds(monkeypatch)
    model = SVDpp(n_factors=4, n_epochs=5, random_state=0, dtype="float64").fit(X, y)
    assert calls == [5]
    assert model.n_epochs_ == 5
    # A validation set and the loss pass score their own states (not installed).
    calls.clear()
    SVDpp(n_factors=4, n_epochs=3, random_state=0, track_loss=True).fit(
        X[:400], y[:400], validation=(X[400:], y[400:]))
    assert calls == [0, 1, 0, 2, 0, 3, 3]


def test_svdpp_callback_sees_the_model_of_each_epoch(monkeypatch):
    X, y = _distinct_ratings()
    calls = _count_state_builds(monkeypatch)
    seen = []

    def callback(model, epoch, history):
        seen.append((model.n_epochs_, model.predict(X, clip=False)))

    SVDpp(n_factors=4, n_epochs=4, random_state=0, dtype="float64").fit(X, y,
                                                                          callback=callback)
    assert calls == [1, 2, 3, 4, 4]
    assert [n for n, _ in seen] == [1, 2, 3, 4]
    for n, predicted in seen:
        # The first n epochs of a seeded fit are a fit of n epochs.
        shorter = SVDpp(n_factors=4, n_epochs=n, random_state=0, dtype="float64").fit(X, y)
        np.testing.assert_array_equal(predicted, shorter.predict(X, clip=False))


def test_svdpp_early_stopping_installs_the_best_epoch():
    X, y = _distinct_ratings(seed=2, n_users=60, n_items=40)
    params = dict(n_factors=4, random_state=0, dtype="float64", learning_rate=0.05)
    model = SVDpp(n_epochs=40, early_stopping=True, n_iter_no_change=2, **params).fit(
        X[:700], y[:700], validation=(X[700:], y[700:]))
    assert model.n_epochs_ > model.best_epoch_  # stopped after epochs without improvement
    best = SVDpp(n_epochs=model.best_epoch_, **params).fit(X[:700], y[:700])
    np.testing.assert_array_equal(model.predict(X, clip=False), best.predict(X, clip=False))
