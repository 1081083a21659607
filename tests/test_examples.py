"""Every example script runs top to bottom within its one-minute budget."""

import runpy
import time
from pathlib import Path

import pytest

EXAMPLES = sorted((Path(__file__).parent.parent / "examples").glob("*.py"))
BUDGET_SECONDS = 60


@pytest.mark.examples
@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_runs(path, capsys):
    if "distributed" in path.read_text():  # the optional "dist" extra
        pytest.importorskip("distributed")
    start = time.perf_counter()
    runpy.run_path(str(path), run_name="__main__")
    elapsed = time.perf_counter() - start
    assert capsys.readouterr().out  # every example reports something
    assert elapsed < BUDGET_SECONDS, f"{path.name} took {elapsed:.0f} s"
