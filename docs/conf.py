"""Sphinx configuration of the mfcy documentation.

The site documents the *installed* package (``pip install '.[docs]'``): the
source tree has no compiled kernel, so it is never put on ``sys.path``.

Build: ``sphinx-build -W --keep-going -b html docs docs/_build/html``.
Everything renders offline: MathJax is served from the build's own
``_static`` (sphinx-mathjax-offline), and nothing is fetched at build time (no
intersphinx, no remote gallery links).
"""

import os

# The examples run many small fits. On a machine whose cores are busy with
# other work (a CI runner, a shared VM), OpenMP threads that spin while they
# wait for each other make a small fit hundreds of times slower; passive
# waiting costs nothing measurable here. Must be set before the kernel loads.
os.environ.setdefault("OMP_WAIT_POLICY", "passive")

import matplotlib  # noqa: E402

matplotlib.use("Agg")

import mfcy  # noqa: E402  (after choosing the backend)

project = "mfcy"
author = "The mfcy developers"
copyright = "The mfcy developers"
release = mfcy.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx-mathjax-offline",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
    "sphinxarg.ext",
    "sphinx_copybutton",
]

templates_path = ["_templates"]
# Curly quotes and ellipses, but "--" stays two hyphens: the command line's
# options (--model) appear in running text and in argparse help texts.
smartquotes_action = "qe"
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store", "**.ipynb_checkpoints"]
default_role = "py:obj"

# Every cross-reference must resolve: a broken one is a warning, and the build
# runs with -W.
nitpicky = True
# Other projects' objects cannot resolve without intersphinx (which would fetch
# their inventories): a reference to one renders as plain code instead.
nitpick_ignore_regex = [
    (r"py:.*", r"(numpy|scipy|pandas|matplotlib|sklearn|dask)(\..*)?"),
]

# -- API reference ----------------------------------------------------------------
autosummary_generate = True
# A module's __all__ decides what it documents, so a new public name (or a new
# module listed in api.rst) needs no further edit here.
autosummary_ignore_module_all = False
autodoc_typehints = "none"

numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_attributes_as_param_list = True
# Fail the build on an undocumented public object, a missing summary or
# Returns section, and parameters that the docstring and the signature
# disagree about.
numpydoc_validation_checks = {"GL08", "SS01", "PR01", "PR02", "PR10", "RT01"}
numpydoc_validation_exclude = {r"\.__init__$", r"\.__repr__$"}

# -- example gallery --------------------------------------------------------------
sphinx_gallery_conf = {
    "examples_dirs": "../examples",
    "gallery_dirs": "auto_examples",
    # Every script is executed at build time; a failing one fails the build.
    "filename_pattern": r".*\.py$",
    "ignore_pattern": r"__init__\.py|/_",
    "within_subsection_order": "FileNameSortKey",
    "backreferences_dir": "gen_modules/backreferences",
    "doc_module": ("mfcy",),
    "remove_config_comments": True,
    # A cell's last expression is shown only when it renders as HTML (a
    # DataFrame), not as the repr of whatever a plotting call returned.
    "capture_repr": ("_repr_html_",),
    "matplotlib_animations": False,
    "min_reported_time": 1,
    "show_memory": False,
    "download_all_examples": False,
    # The timing summary pages load a table widget from a CDN: leave them out
    # (each example still states its own running time).
    "write_computation_times": False,
}

# -- HTML -------------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"mfcy {release}"
html_static_path = ["_static"]
html_css_files = ["mfcy.css"]
html_show_sourcelink = False
html_theme_options = {
    "navbar_align": "left",
    "show_toc_level": 2,
    "navigation_with_keys": False,
    # The examples' code and figures need the width more than a page outline.
    # (the theme warns when two wildcard patterns match a page, so the pages
    # that keep an outline are listed instead of the gallery being excluded).
    "secondary_sidebar_items": {pattern: ["page-toc"] for pattern in (
        "index", "getting_started", "api", "user_guide/*", "gen_modules/*")},
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version"],
}
html_context = {"default_mode": "light"}
# "fit()" rather than "MatrixFactorization.fit()" in the page outline.
toc_object_entries_show_parents = "hide"
