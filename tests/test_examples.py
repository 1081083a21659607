"""Every example script runs top to bottom and reports something.

The one-minute CPU budget of each example is a speed target, checked by
``benchmarks/examples.py`` (timed side by side), not by a timed assertion here.
"""

import runpy
from pathlib import Path

import pytest

EXAMPLES = sorted((Path(__file__).parent.parent / "examples").glob("*.py"))


@pytest.mark.examples
@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_runs(path, capsys):
    if "distributed" in path.read_text():  # the optional "dist" extra
        pytest.importorskip("distributed")
    runpy.run_path(str(path), run_name="__main__")
    assert capsys.readouterr().out  # every example reports something
