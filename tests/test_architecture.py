"""The package's shape (issue 13): layers without import cycles, modules of a readable size,
and one owner of the fitted state. Read from the installed package's sources."""

import ast
import pathlib
import subprocess
import sys

import pytest

import mfcy

PACKAGE = pathlib.Path(mfcy.__file__).parent
SOURCES = {p.stem: p for p in sorted(PACKAGE.glob("*.py"))}

# Modules still over the size limit, with the reason; the test fails when one
# shrinks below it (so the entry is removed) or another grows past it.
OVER_LIMIT = {}
MAX_LINES = 700


def _imports(path):
    """The mfcy modules ``path`` imports, at module level or inside functions."""
    tree = ast.parse(path.read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level == 1:
                if node.module:
                    found.add(node.module.split(".")[0])
                else:
                    found.update(alias.name for alias in node.names)
            elif node.level == 0 and node.module and node.module.split(".")[0] == "mfcy":
                parts = node.module.split(".")
                found.add(parts[1] if len(parts) > 1 else "__init__")
        elif isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] == "mfcy":
                    found.add(parts[1] if len(parts) > 1 else "__init__")
    return {name for name in found if name in SOURCES}


def test_no_import_cycle_inside_mfcy():
    graph = {name: _imports(path) - {name} for name, path in SOURCES.items()}
    # Docstring examples (">>> import mfcy") are not parsed as imports; the
    # package root is imported by nothing inside the package.
    assert not [name for name, deps in graph.items() if "__init__" in deps]
    done, active = set(), []

    def visit(name):
        if name in active:
            cycle = active[active.index(name):] + [name]
            pytest.fail(f"import cycle: {' -> '.join(cycle)}")
        if name in done:
            return
        active.append(name)
        for dep in sorted(graph[name]):
            visit(dep)
        active.pop()
        done.add(name)

    for name in sorted(graph):
        visit(name)


def test_lower_layers_never_import_the_estimators_or_the_top_floor():
    upper = {"model", "io", "cli", "dask", "model_selection", "plotting", "__init__"}
    for name in ("_params", "_state", "_training", "_fold_in", "_recommend", "_sklearn_compat",
                 "_blocking", "_cluster_tasks", "_input", "exceptions", "_extensions", "_version"):
        assert not (_imports(SOURCES[name]) & upper), name
    assert "model" not in _imports(SOURCES["io"])


EXTENSIONS = {"_layout", "_models", "_sgd"}


def _extension_imports(path):
    """(line, how) of each import of a compiled extension in ``path``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            if (node.module or "").split(".")[0] in EXTENSIONS:
                found.append((node.lineno, f"from .{node.module} import ..."))
            elif node.module is None and {a.name for a in node.names} & EXTENSIONS:
                found.append((node.lineno, "from . import <extension>"))
        elif isinstance(node, (ast.Import, ast.ImportFrom)) and getattr(node, "level", 0) == 0:
            names = [node.module] if isinstance(node, ast.ImportFrom) else [a.name for a in node.names]
            if any(n and n.split(".")[:2][-1] in EXTENSIONS and n.startswith("mfcy.") for n in names):
                found.append((node.lineno, "import mfcy.<extension>"))
    return found


def test_the_extensions_are_imported_only_through_the_loader():
    # mfcy/_extensions.py sets OpenMP's passive-wait hint around the first load
    # of the extensions; an import around it would load them without the hint.
    offenders = {name: _extension_imports(path) for name, path in SOURCES.items()
                 if name != "_extensions"}
    assert {name: found for name, found in offenders.items() if found} == {}
    assert _extension_imports(SOURCES["_extensions"])  # the check sees imports where there are


def test_importing_the_package_loads_nothing_heavy(tmp_path):
    # The names are loaded on first use, so `import mfcy` is quick, and the
    # `mfcy` command (mfcy.cli) does its heavy imports inside main()'s Ctrl-C guard.
    code = ("import sys, mfcy, mfcy.cli; heavy = ('numpy', 'pandas', 'mfcy._sgd', "
            "'mfcy._layout', 'mfcy.model'); print([m for m in heavy if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=tmp_path, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "[]", (out.stdout, out.stderr)


def test_public_names_resolve_lazily_and_dir_lists_them():
    import mfcy.model

    assert mfcy.MatrixFactorization is mfcy.model.MatrixFactorization
    assert set(mfcy.__all__) <= set(dir(mfcy))
    with pytest.raises(AttributeError, match="has no attribute 'no_such_name'"):
        mfcy.no_such_name  # noqa: B018


# The layers of docs/how_mfcy_is_built.rst, bottom up (the compiled kernel,
# _sgd/_layout/_models, is below them all). A module imports only from its own
# layer or lower ones; a new module must be placed here.
LAYERS = [
    ("foundation", {"exceptions", "_version", "_extensions", "_limits", "_memory", "_exact",
                    "_params", "_schedules", "plotting"}),
    ("data", {"_ratings_file", "_readers", "_input", "_blocking", "_grouped", "datasets",
              "metrics"}),
    ("state", {"_state"}),
    ("model files", {"_archive", "io"}),
    ("shared by every model", {"_training", "_sklearn_compat", "_recommend", "_fold_in",
                               "_predict", "_starting", "_factor_model"}),
    ("estimators", {"model", "baseline", "nmf", "svdpp"}),
    ("top floor", {"cli", "_cli_algorithms", "_cli_report", "_cli_types", "__main__", "dask",
                   "_cluster_tasks", "_cluster_partition", "model_selection", "__init__"}),
]


def test_every_module_has_a_layer_and_imports_only_its_own_or_lower_ones():
    layer_of = {name: level for level, (_, names) in enumerate(LAYERS) for name in names}
    assert set(layer_of) == set(SOURCES), set(layer_of) ^ set(SOURCES)
    upward = {(name, dep, LAYERS[layer_of[dep]][0]) for name, path in SOURCES.items()
              for dep in _imports(path) if layer_of[dep] > layer_of[name]}
    assert not upward


def test_no_module_is_over_the_size_limit():
    sizes = {name: len(path.read_text().splitlines()) for name, path in SOURCES.items()}
    over = {name for name, lines in sizes.items() if lines > MAX_LINES}
    assert over == set(OVER_LIMIT), {name: sizes[name] for name in over ^ set(OVER_LIMIT)}


FITTED = {"user_factors_", "item_factors_", "user_bias_", "item_bias_", "global_mean_",
          "rating_range_", "users_", "items_", "history_", "n_epochs_", "best_epoch_",
          "_biased", "_seen_indptr", "_seen_items", "_fitted"}


def _fitted_writes(path):
    tree = ast.parse(path.read_text())
    writes = []
    for node in ast.walk(tree):
        targets = []
        if isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        elif isinstance(node, ast.Delete):
            targets = node.targets
        for target in targets:
            for sub in ast.walk(target):
                if isinstance(sub, ast.Attribute) and sub.attr in FITTED:
                    writes.append((node.lineno, sub.attr))
                if (isinstance(sub, ast.Subscript) and isinstance(sub.value, ast.Attribute)
                        and sub.value.attr == "__dict__"):
                    writes.append((node.lineno, "__dict__[...]"))
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                and node.func.id in ("setattr", "delattr") and len(node.args) >= 2
                and isinstance(node.args[1], ast.Constant) and node.args[1].value in FITTED):
            writes.append((node.lineno, node.args[1].value))
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr in ("pop", "setdefault", "update")
                and isinstance(node.func.value, ast.Attribute)
                and node.func.value.attr == "__dict__"):
            writes.append((node.lineno, "__dict__." + node.func.attr))
    return writes


def test_nothing_outside_the_state_module_writes_a_fitted_attribute():
    offenders = {name: _fitted_writes(path) for name, path in SOURCES.items() if name != "_state"}
    assert {name: w for name, w in offenders.items() if w} == {}
    assert _fitted_writes(SOURCES["_state"])  # the check sees writes where there are some


def test_fitted_attributes_are_read_only():
    from mfcy import MatrixFactorization

    model = MatrixFactorization(n_factors=2, n_epochs=1).fit([[0, 0], [1, 1]], [1.0, 2.0])
    with pytest.raises(AttributeError):
        model.user_factors_ = None
    assert not hasattr(MatrixFactorization(), "user_factors_")


def test_every_model_kind_is_found_by_the_name_a_model_file_records():
    from mfcy import _state

    for name, module in _state._MODEL_MODULES.items():
        cls = _state.model_class(name)
        assert (cls.__name__, cls.__module__) == (name, module)
    assert set(_state._MODEL_MODULES) == set(_state._MODEL_CLASSES)
