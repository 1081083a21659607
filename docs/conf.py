"""Sphinx configuration of the skloop documentation.

Build (fast: the gallery's examples are rendered, not executed)::

    python -m sphinx -W -b html docs docs/_build/html

Run the examples and embed their output and figures (minutes)::

    python -m sphinx -W -b html -D plot_gallery=1 docs docs/_build/html

The API reference is generated from each public module's ``__all__`` at every build, so a new
public name appears without editing these pages.
"""

from __future__ import annotations

import importlib
import shutil
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(ROOT))

import skloop  # noqa: E402

project = "skloop"
author = "skloop developers"
copyright = "2026, skloop developers"  # noqa: A001
release = skloop.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
]

templates_path = ["_templates"]
exclude_patterns = ["_build", "_gallery_src", "gallery_header.rst", "**.ipynb_checkpoints"]
html_theme = "alabaster"
html_static_path = ["_static"]
html_css_files = ["skloop.css"]
html_title = f"skloop {release}"
html_theme_options = {
    "description": "scikit-learn estimators that train small transformers to learn algorithms",
    "fixed_sidebar": True,
    "page_width": "1180px",
    "sidebar_width": "240px",
    "show_relbars": True,
}
html_sidebars = {"**": ["about.html", "navigation.html", "relations.html", "searchbox.html"]}
html_show_sourcelink = False

# --- API reference ------------------------------------------------------------------------
# Docstrings are numpydoc. Cross-references that cannot be resolved (private helpers, torch
# and scikit-learn objects without intersphinx, which would need the network) are left as
# plain text instead of failing the -W build: nitpicky stays off.
autosummary_generate = True
autosummary_imported_members = True
autodoc_typehints = "none"
autodoc_member_order = "groupwise"
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_validation_checks = set()  # no style lint here: -W is about what renders wrong
numpydoc_xref_param_type = False

# scikit-learn's metadata-routing and output-container methods (set_fit_request, ...,
# get_metadata_routing, set_output) are generic machinery documented by scikit-learn; their
# docstrings refer to its own pages. Classes document their own methods and those of skloop's
# mixins (the class template lists what is inherited and left out).
_SKIPPED_MEMBERS = {"get_metadata_routing", "set_output", "get_params", "set_params"}


def _skip_member(app, what, name, obj, skip, options):
    if name in _SKIPPED_MEMBERS or (name.startswith("set_") and name.endswith("_request")):
        return True
    return skip


def setup(app):
    app.connect("autodoc-skip-member", _skip_member)


# (module, title, introduction, names to leave out because they are documented elsewhere)
API_MODULES = [
    ("skloop", "Estimators", "The estimators, importable from the top level.", ()),
    ("skloop.datasets", "Datasets", "", ()),
    ("skloop.metrics", "Metrics", "", ()),
    ("skloop.preprocessing", "Preprocessing", "", ()),
    ("skloop.pca", "Looped-transformer tools", "Callbacks and helpers of "
     ":class:`~skloop.LoopedTransformerPCA`; the estimators themselves are on the "
     "Estimators page.", ("ExactPCA", "LoopedTransformerPCA", "PowerIterationPCA")),
    ("skloop.induction", "Induction-head tools", "Targets, the population dynamics and "
     "mechanism scores of the induction-head paper; the estimators are on the Estimators "
     "page.", ("InductionDynamicsRegressor", "InductionHeadRegressor")),
    ("skloop.plotting", "Plotting", "Needs matplotlib: ``pip install 'skloop[plot]'``.", ()),
]


def _write_if_changed(path: Path, text: str) -> None:
    # Rewriting an unchanged file would make Sphinx re-read it on every incremental build.
    if not path.exists() or path.read_text() != text:
        path.write_text(text)


def write_api_pages() -> None:
    """One page per public module, listing every name of its ``__all__``."""
    folder = DOCS / "api" / "modules"
    folder.mkdir(parents=True, exist_ok=True)
    for module_name, title, intro, skip in API_MODULES:
        module = importlib.import_module(module_name)
        names = [name for name in module.__all__ if name not in skip]
        lines = [
            f".. _api-{module_name}:", "", title, "=" * len(title), "",
            f".. automodule:: {module_name}", "   :no-members:", "",
        ]
        if intro:
            lines += [intro, ""]
        lines += [f".. currentmodule:: {module_name}", "", ".. autosummary::",
                  "   :toctree: ../generated", "   :nosignatures:", ""]
        lines += [f"   {name}" for name in names]
        _write_if_changed(folder / f"{module_name}.rst", "\n".join(lines) + "\n")


def copy_gallery_sources() -> None:
    """The gallery's source: ``examples/*.py`` plus this folder's gallery header.

    ``examples/`` stays a folder of plain scripts (tests run them); sphinx-gallery wants a
    header file next to them, so the build works on a copy.
    """
    target = DOCS / "_gallery_src"
    target.mkdir(exist_ok=True)
    wanted = {"GALLERY_HEADER.rst"}
    shutil.copyfile(DOCS / "gallery_header.rst", target / "GALLERY_HEADER.rst")
    for script in sorted((ROOT / "examples").glob("*.py")):
        wanted.add(script.name)
        if not (target / script.name).exists() or (
                (target / script.name).read_bytes() != script.read_bytes()):
            shutil.copyfile(script, target / script.name)
    for stale in target.iterdir():
        if stale.name not in wanted and stale.is_file():
            stale.unlink()


write_api_pages()
copy_gallery_sources()

# --- gallery ------------------------------------------------------------------------------
# Not executed by default (the examples run in tests/test_examples.py); -D plot_gallery=1
# executes them and embeds their printed output and figures.
plot_gallery = "False"
sphinx_gallery_conf = {
    "examples_dirs": "_gallery_src",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"\.py$",
    "download_all_examples": False,
    "write_computation_times": False,
    "backreferences_dir": None,
    "min_reported_time": 10**9,
    "remove_config_comments": True,
    "show_memory": False,
}
