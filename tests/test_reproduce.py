"""The reproduction commands run end to end at toy sizes and write figures and tables."""

import numpy as np
import pytest

from skloop.cli import main
from skloop.datasets import make_spectrum_matrices, make_sphere_matrices
from skloop.pca._diagnostics import no_ln_plateaus
from skloop.reproduce import ood, power_method
from skloop.reproduce._common import CPU_SIZES, FULL_SIZES, Sizes, sizes_for

TINY = Sizes(8, 16, 256, 64, 3, "auto", label="test")


@pytest.mark.parametrize("module, figures", [
    (power_method, {"fig2_ln_vs_no_ln.png", "fig1_fig4_active_scalar_growth.png",
                    "fig5_snapshots_vs_power_method.png", "fig8_depth_transfer.png"}),
    (ood, {"ood_mean_error.png"}),
])
def test_reproduction_writes_figures_and_report(module, figures, tmp_path):
    text = module.run(tmp_path, sizes=TINY, seed=0)
    written = {p.name for p in tmp_path.iterdir()}
    assert figures <= written
    assert "report.md" in written
    assert (tmp_path / "report.md").read_text() == text
    assert "Mode: test (d=8, n=16" in text
    assert "uncentered" in text.lower() or "Uncentered" in text


def test_induction_heads_reproduction_smoke(tmp_path):
    from skloop.reproduce import induction_heads

    text = induction_heads.run(tmp_path, sizes=TINY, seed=0, online_epochs=2, text_steps=8,
                              lifted_steps=100)
    assert {"fig3_fig9_four_phases.png", "plateau_scaling.png", "fig8_real_text.png",
            "fig10_gd_vs_adam.png"} <= {p.name for p in tmp_path.iterdir()}
    assert "Real text" in text and "Fig 10" in text
    assert "Plateau scaling" in text and "L 80/40 = 2.05" in text


def test_cli_reproduce_ood(tmp_path, capsys):
    assert main(["reproduce", "ood", "--epochs", "1", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "sklearn PCA loop (centered)" in out and "ExactPCA" in out
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
    from skloop.induction._text import load_text

    text = load_text()
    assert len(text) >= 200_000 and len(set(text)) >= 60  # varies with the CPython version
