"""``mfcy fit --algorithm``: which estimator, and which of its parameters each fit option sets."""

from __future__ import annotations

__all__ = ["ALGORITHMS", "resolve_algorithm", "model_from_options"]


#: --algorithm -> the estimator class's name in mfcy.
ALGORITHMS = {"svd": "MatrixFactorization", "svdpp": "SVDpp", "nmf": "NMF",
              "baseline": "BaselineOnly"}

#: fit option -> the parameter it sets, per algorithm (absent: it does not apply).
_OPTION_PARAMETERS = {
    "factors": {"svd": "n_factors", "svdpp": "n_factors", "nmf": "n_factors"},
    "lr": {"svd": "learning_rate", "svdpp": "learning_rate"},
    "reg": {"svd": "regularization", "svdpp": "regularization",
            "nmf": ("user_regularization", "item_regularization"),
            "baseline": ("user_regularization", "item_regularization")},
}


def resolve_algorithm(args):
    """The estimator class of ``--algorithm``; options left out take its defaults."""
    from .baseline import BaselineOnly
    from .model import MatrixFactorization
    from .nmf import NMF
    from .svdpp import SVDpp

    classes = {c.__name__: c for c in (MatrixFactorization, SVDpp, NMF, BaselineOnly)}
    cls = classes[ALGORITHMS[args.algorithm]]
    defaults = cls().get_params()
    args.epochs = defaults["n_epochs"] if args.epochs is None else args.epochs
    for option, targets in _OPTION_PARAMETERS.items():
        target = targets.get(args.algorithm)
        if target is None:
            if getattr(args, option) is not None:
                raise ValueError(f"--{option} does not apply to --algorithm {args.algorithm}")
            continue
    if args.factors is None:  # shown in the summary line
        args.factors = defaults.get("n_factors", 0)
    if args.no_bias and "biased" not in defaults:
        raise ValueError(f"--no-bias does not apply to --algorithm {args.algorithm}")
    return cls


def model_from_options(args, cls, epochs, early_stopping):
    """The estimator the fit options describe."""
    # track_loss: the command reports (and --plot draws) the training RMSE of
    # every epoch for every algorithm, SVDpp and NMF too, whose default is off.
    options = dict(n_epochs=epochs, dtype=args.dtype, n_threads=args.threads,
                   random_state=args.seed, early_stopping=early_stopping,
                   n_iter_no_change=args.patience, track_loss=True)
    if args.no_bias:  # checked to apply; else the model's default (NMF: unbiased)
        options["biased"] = False
    for option, targets in _OPTION_PARAMETERS.items():
        target = targets.get(args.algorithm, ())
        for name in (target,) if isinstance(target, str) else target:
            if getattr(args, option) is not None:  # else the model's default
                options[name] = getattr(args, option)
    return cls(**options)
