"""The documentation builds with warnings as errors, documents every public name, and its
getting-started code runs as written."""

import importlib
import re
import subprocess
import sys
from pathlib import Path

import pytest

DOCS = Path(__file__).parent.parent / "docs"
DOCUMENTED_MODULES = ["skloop", "skloop.datasets", "skloop.metrics", "skloop.preprocessing",
                      "skloop.pca", "skloop.induction", "skloop.plotting"]


def _build(out):
    # Fast mode: the gallery is rendered, not executed (tests/test_examples.py runs the
    # examples); -W turns every warning into an error, as in CI.
    result = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html",
         str(DOCS), str(out)],
        capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-5000:]


def test_docs_build_with_warnings_as_errors_and_document_everything(tmp_path):
    # One test (not a fixture shared by several): under pytest-xdist, tests sharing a module
    # fixture may land on different workers, which would build into the same source tree
    # (docs/api/generated, docs/auto_examples) at once.
    for module in ("sphinx", "numpydoc", "sphinx_gallery"):
        pytest.importorskip(module, reason="the docs extra (pip install -e '.[docs]') is needed")
    html = tmp_path / "html"
    _build(html)
    for page in ("index", "getting_started", "reproducing", "user_guide/objectives",
                 "user_guide/conventions", "user_guide/induction", "user_guide/skorch",
                 "user_guide/scale_out", "auto_examples/index", "api/index"):
        assert (html / f"{page}.html").exists(), page
    index = (html / "index.html").read_text()
    assert "LoopedTransformerPCA" in index and "Reproducing the papers" in index

    # Every public name has a page generated from its docstring.
    top_level = importlib.import_module("skloop")
    documented = set()
    for module_name in DOCUMENTED_MODULES:
        for name in importlib.import_module(module_name).__all__:
            documented.add(f"skloop.{name}" if hasattr(top_level, name)
                           else f"{module_name}.{name}")
    pages = {p.stem for p in (html / "api" / "generated").glob("*.html")}
    assert documented <= pages, sorted(documented - pages)
    estimator = (html / "api" / "generated" / "skloop.LoopedTransformerPCA.html").read_text()
    for member in ("fit", "predict", "score", "project_structure", "save", "load"):
        assert f'id="skloop.LoopedTransformerPCA.{member}"' in estimator, member

    # Every example is in the gallery.
    examples = {p.stem for p in (DOCS.parent / "examples").glob("*.py")}
    gallery = {p.stem for p in (html / "auto_examples").glob("*.html")}
    assert examples <= gallery, sorted(examples - gallery)


def test_getting_started_code_runs(capsys):
    # The page's code blocks, run top to bottom in one namespace as a reader would.
    text = (DOCS / "getting_started.rst").read_text()
    blocks = re.findall(r".. code-block:: python\n\n((?:   .*\n|\n)+)", text)
    assert len(blocks) >= 4
    namespace = {}
    for block in blocks:
        code = "\n".join(line[3:] for line in block.splitlines())
        exec(compile(code, str(DOCS / "getting_started.rst"), "exec"), namespace)
    assert capsys.readouterr().out
