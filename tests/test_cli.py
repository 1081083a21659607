import contextlib
import io
import subprocess
import sys

import pytest

from skloop.cli import main


def test_demo_reports_the_transformer_next_to_the_baselines(tmp_path, capsys):
    # The main job end to end (about 40 s on one CPU core).
    assert main(["demo", "--out", str(tmp_path), "-q", "--seed", "0", "--device", "cpu"]) == 0
    captured = capsys.readouterr()
    out = captured.out
    for name in ["LoopedTransformerPCA, LN", "LoopedTransformerPCA, no LN", "PowerIterationPCA",
                 "ExactPCA", "sklearn PCA", "Task 1", "Task 2 (OOD)", "digits", "image patches",
                 "Grid search", "four phases", "uncentered", "T_II", "T_III"]:
        assert name in out, name
    # One statistic convention: every error column names its statistic.
    assert "| mean error (°) | median error (°) | p90 error (°) |" in out
    assert captured.err == ""  # -q: no progress bar
    assert (tmp_path / "report.md").exists()
    for png in ("loops_vs_power_method.png", "induction_four_phases.png"):
        assert f"`{png}`:" in out  # each figure named with what it shows
        assert (tmp_path / png).exists()


def _help(*argv):
    """What ``skloop <argv> --help`` prints (in-process: the parser is the one the command
    uses)."""
    stream = io.StringIO()
    with contextlib.redirect_stdout(stream), pytest.raises(SystemExit):
        main([*argv, "--help"])
    return stream.getvalue()


def test_module_entry_point_and_help():
    result = subprocess.run([sys.executable, "-m", "skloop", "--help"], capture_output=True,
                            text=True, check=True)
    assert "demo" in result.stdout and "reproduce" in result.stdout


def test_every_subcommand_has_its_own_help():
    predict = _help("bench", "predict")
    assert "usage: skloop bench predict" in predict and "--quick" in predict
    assert "Predict speed" in predict and "--compile" not in predict
    fit = _help("bench", "fit")
    assert "usage: skloop bench fit" in fit and "--compile" in fit
    for command in (["demo"], ["reproduce"]):
        text = _help(*command)
        assert f"usage: skloop {command[0]}" in text
        for option in ("--device", "--seed", "-q, --quiet", "-v, --verbose", "--out"):
            assert option in text, (command, option)
    assert "induction-heads" in _help("reproduce")


def _modules_imported_by(code, prefixes):
    """The modules whose name starts with one of ``prefixes`` after running ``code``."""
    code += f"\nimport sys\nprint(sorted(m for m in sys.modules if m.startswith({prefixes!r})))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    return result.stdout.strip().splitlines()[-1]


def test_help_imports_nothing_heavy():
    # The parser is built and --help printed without importing the experiments (or, through
    # them, matplotlib and scikit-learn's estimators).
    code = ("from skloop.cli import main\ntry:\n    main(['bench', 'predict', '--help'])\n"
            "except SystemExit:\n    pass")
    assert _modules_imported_by(code, ("skloop.experiments", "matplotlib")) == "[]"


def test_quiet_and_verbose_exclude_each_other():
    with pytest.raises(SystemExit):
        main(["demo", "-q", "-v"])


def test_unknown_command_exits_with_usage():
    with pytest.raises(SystemExit):
        main(["nonsense"])


def test_bench_fit_quick_prints_the_ratio_table(capsys):
    assert main(["bench", "fit", "--quick"]) == 0
    out = capsys.readouterr().out
    assert "skloop / hand-written" in out and "Paper Fig 2 budget" in out


def test_unknown_arguments_exit_with_usage():
    for argv in (["demo", "--quick"], ["bench", "fit", "--nonsense"], ["bench", "predict",
                                                                       "--compile"]):
        with pytest.raises(SystemExit):
            main(argv)


def test_library_never_imports_the_experiments():
    # skloop.experiments sits above the library: only the CLI reaches it, lazily.
    code = ("import skloop, skloop.cli, skloop.datasets, skloop.induction, skloop.metrics, "
            "skloop.pca, skloop.plotting")
    assert _modules_imported_by(code, ("skloop.experiments",)) == "[]"
