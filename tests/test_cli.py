import subprocess
import sys

import pytest

from skloop.cli import main


def test_demo_reports_the_transformer_next_to_the_baselines(tmp_path, capsys):
    # The main job end to end (about 40 s on one CPU core).
    assert main(["demo", "--out", str(tmp_path), "--quiet", "--seed", "0"]) == 0
    out = capsys.readouterr().out
    for name in ["LoopedTransformerPCA, LN", "LoopedTransformerPCA, no LN", "PowerIterationPCA",
                 "ExactPCA", "sklearn PCA", "Task 2 (OOD)", "digits", "image patches",
                 "Grid search", "four phases", "uncentered"]:
        assert name in out, name
    assert (tmp_path / "report.md").exists()
    assert (tmp_path / "loops_vs_power_method.png").exists()
    assert (tmp_path / "induction_four_phases.png").exists()


def test_module_entry_point_and_help():
    result = subprocess.run(
        [sys.executable, "-m", "skloop", "--help"], capture_output=True, text=True, check=True
    )
    assert "demo" in result.stdout


def test_unknown_command_exits_with_usage():
    with pytest.raises(SystemExit):
        main(["nonsense"])


def test_bench_fit_quick_prints_the_ratio_table(capsys):
    assert main(["bench", "fit", "--quick"]) == 0
    out = capsys.readouterr().out
    assert "skloop / hand-written" in out and "Paper Fig 2 budget" in out


def test_extra_arguments_are_only_for_bench():
    with pytest.raises(SystemExit):
        main(["demo", "--quick"])


def test_library_never_imports_the_experiments():
    # skloop.experiments sits above the library: only the CLI reaches it, lazily.
    code = ("import sys, skloop, skloop.cli, skloop.datasets, skloop.induction, skloop.metrics, "
            "skloop.pca, skloop.plotting; "
            "print(sorted(m for m in sys.modules if m.startswith('skloop.experiments')))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    assert result.stdout.strip() == "[]"
