"""Every example script runs top to bottom (each is meant to take under a minute on CPU)."""

import runpy
from pathlib import Path

import pytest

EXAMPLES = sorted((Path(__file__).parent.parent / "examples").glob("*.py"))


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_runs(path, capsys):
    if "distributed" in path.read_text():  # the optional "dist" extra
        pytest.importorskip("distributed")
    runpy.run_path(str(path), run_name="__main__")
    assert capsys.readouterr().out  # every example reports something
