import subprocess
import sys

import pytest

from skloop.cli import main


def test_demo_prints_the_baseline_table(capsys):
    assert main(["demo", "--n-matrices", "20", "--seed", "1"]) == 0
    out = capsys.readouterr().out
    for name in [
        "Task 1 (sphere)",
        "Task 2 (spectrum)",
        "spiked Gaussian",
        "digits",
        "image patches",
        "ExactPCA",
        "PowerIterationPCA(20)",
        "TruncatedSVD",
    ]:
        assert name in out
    assert "uncentered" in out  # the table states its convention


def test_module_entry_point_and_help():
    result = subprocess.run(
        [sys.executable, "-m", "skloop", "--help"], capture_output=True, text=True, check=True
    )
    assert "demo" in result.stdout


def test_unknown_command_exits_with_usage():
    with pytest.raises(SystemExit):
        main(["nonsense"])
