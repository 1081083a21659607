"""The reproduction commands run end to end at toy sizes and write figures and tables."""

import numpy as np
import pytest

from skloop.cli import main
from skloop.datasets import make_spectrum_matrices, make_sphere_matrices
from skloop.experiments.reproduce import ood, power_method
from skloop.experiments.reproduce._common import CPU_SIZES, FULL_SIZES, Sizes, sizes_for
from skloop.pca._diagnostics import no_ln_plateaus

TINY = Sizes(8, 16, 256, 64, 3, "auto", label="test")


@pytest.mark.parametrize("module, figures", [
    (power_method, {"fig2_ln_vs_no_ln.png", "fig1_fig4_active_scalar_growth.png",
                    "fig5_snapshots_vs_power_method.png", "fig8_depth_transfer.png"}),
    (ood, {"ood_mean_error.png"}),
])
def test_reproduction_writes_figures_and_report(module, figures, tmp_path):
    text = module.run(tmp_path, sizes=TINY, seed=0, device="cpu")
    written = {p.name for p in tmp_path.iterdir()}
    assert figures <= written
    assert "report.md" in written
    assert (tmp_path / "report.md").read_text() == text
    assert "Mode: test (d=8, n=16" in text
    assert "uncentered" in text.lower() or "Uncentered" in text
    assert "median" in text  # the statistic over test matrices is named


def test_induction_heads_reproduction_follows_epochs(tmp_path, monkeypatch, capsys):
    # Through the CLI, as a user runs it, on toy CPU budgets: --epochs 2 halves them all.
    import re

    from skloop.experiments.reproduce import induction_heads

    tiny = induction_heads.InductionSizes(4, 0.5, 200, 200, 100, 16, literal_epochs=2)
    monkeypatch.setattr(induction_heads, "CPU_SIZES", tiny)
    online = {}
    figure = induction_heads._dynamics_figure
    monkeypatch.setattr(induction_heads, "_dynamics_figure",
                        lambda report, models: (online.update(models), figure(report, models)))
    assert main(["reproduce", "induction-heads", "--epochs", "2", "--out", str(tmp_path)]) == 0
    text = (tmp_path / "report.md").read_text()
    assert text in capsys.readouterr().out
    assert {"fig3_fig9_four_phases.png", "plateau_scaling.png", "fig8_real_text.png",
            "fig10_gd_vs_adam.png"} <= {p.name for p in tmp_path.iterdir()}
    # Figs 3/9: 2 Stage II epochs of 100 steps, evaluated after each.
    assert [r["iteration"] for r in online["gaussian"].history_] == [100, 200]
    assert "online SGD lr 0.5, batch 1000, 200 Stage II steps;" in text
    assert "L_G4 after t = 50 of Stage II" in text  # literal Stage I run: 1 epoch at lr 0.5
    assert re.search(r"\n\| GD +\| [^|]+\| +100 \|", text)  # Fig 10: 100 iterations
    assert re.search(r"\n\| +8 \| [^\n]+\n\nFigures", text)  # real text: 8 Adam steps
    assert "Plateau scaling" in text and "L 80/40 = 2.05" in text


def test_induction_heads_sizes():
    from skloop.experiments.reproduce.induction_heads import CPU_SIZES, FULL_SIZES, sizes_for

    # The CPU default that produced the published numbers, and the paper's budgets.
    assert sizes_for(False) == CPU_SIZES
    assert (CPU_SIZES.online_epochs, CPU_SIZES.lr, CPU_SIZES.lifted_steps, CPU_SIZES.text_steps,
            CPU_SIZES.literal_epochs) == (94, 0.5, 3000, 2000, 20)
    assert (FULL_SIZES.online_epochs, FULL_SIZES.lr, FULL_SIZES.lifted_steps,
            FULL_SIZES.text_steps) == (460, 0.1, 50000, 20000)
    assert "full" in sizes_for(True).label
    half = sizes_for(False, epochs=47)
    assert (half.online_epochs, half.lifted_steps, half.text_steps, half.literal_epochs) == (
        47, 1500, 1000, 10)
    assert sizes_for(True, epochs=46).lifted_steps == 5000
    assert sizes_for(False, epochs=1).lifted_steps == CPU_SIZES.lifted_every  # one evaluation
    with pytest.raises(ValueError, match="epochs"):
        sizes_for(False, epochs=0)


def test_cli_reproduce_ood(tmp_path, capsys):
    assert main(["reproduce", "ood", "--epochs", "1", "--out", str(tmp_path),
                 "--device", "cpu"]) == 0
    captured = capsys.readouterr()
    assert "sklearn PCA loop (centered)" in captured.out and "ExactPCA" in captured.out
    assert "| mean error (°) | median error (°) | p90 error (°) |" in captured.out
    assert "Trained on Task 1, evaluated with 20 loops" in captured.err  # default: progress
    assert (tmp_path / "ood_mean_error.png").exists()


def test_sizes():
    assert sizes_for(False) == CPU_SIZES
    full = sizes_for(True, max_epochs=5)
    assert (full.n_features, full.n_points, full.n_train, full.lr) == (16, 32, 10000, 0.1)
    assert full.max_epochs == 5 and FULL_SIZES.max_epochs == 2000


def test_no_ln_plateaus_match_the_closed_forms():
    # Task 1 (d, n) = (8, 16): ρ*_U = 16 − 128/23, L*_U = 7/23 (math note §4); Task 2 with
    # m = (3, 2, ..., 2, 1): ρ*_U = 16 − 256/34, L*_U = 1/17 exactly; L*_N from §10.2.
    rng = np.random.default_rng(0)
    v = rng.standard_normal((20000, 8))
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    task1 = no_ln_plateaus(make_sphere_matrices(20000, random_state=0), v)
    assert task1["rho_U"] == pytest.approx(16 - 128 / 23, rel=0.01)
    assert task1["loss_U"] == pytest.approx(7 / 23, rel=0.01)
    assert task1["loss_N"] == pytest.approx(0.2732, rel=0.03)
    task2 = no_ln_plateaus(make_spectrum_matrices(2000, random_state=0), v[:2000])
    assert task2["rho_U"] == pytest.approx(16 - 256 / 34, rel=1e-12)
    assert task2["loss_U"] == pytest.approx(1 / 17, rel=1e-12)
    assert task2["loss_N"] == pytest.approx(0.04907, rel=0.05)


def test_bundled_text_is_large_enough():
    from skloop.experiments.char_model import load_text

    text = load_text()
    assert len(text) >= 200_000 and len(set(text)) >= 60  # varies with the CPython version
