"""``skloop reproduce induction-heads``: training dynamics of the induction-head paper.

Fig 3 (Gaussian tokens) and Fig 9 (boolean): online SGD on the 6-parameter model with the
oracle first layer, losses and parameters against gradient-flow time with the phase markers;
the plateau scaling in L, σ_init and α* from the population ODE (table and log plot); the
paper's literal Stage I; Fig 10 (the model lifted to D = 100, GD vs Adam; the lift's target
scale is ambiguous in the paper, math note §6, and W* = w* I/√D is used); a real-text run
(Fig 8 substitute: characters of CPython's bundled documentation).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from ...datasets import InductionTaskSampler, make_induction_head_task
from ...induction import (
    InductionDynamicsRegressor,
    detect_phases,
    plateau_time_theory,
    simulate_population,
    uniform_attention_baseline,
)
from ..char_model import load_text, train_char_model
from ._common import Report

__all__ = ["InductionSizes", "CPU_SIZES", "FULL_SIZES", "sizes_for", "run"]

PHASES = ("T_I", "T_o", "T_w", "T_II", "T_half", "T_III", "plateau")


@dataclass(frozen=True)
class InductionSizes:
    """Training budgets of one induction-heads run.

    Parameters
    ----------
    online_epochs : int
        Figs 3/9: Stage II epochs of 100 online SGD steps.
    lr : float
        Figs 3/9 SGD learning rate (Fig 10's GD uses ``lr / d``).
    lifted_steps : int
        Fig 10: iterations per optimizer.
    lifted_batch : int
        Fig 10: batch size.
    lifted_every : int
        Fig 10: steps per epoch (the evaluation interval).
    text_steps : int
        Real text: Adam steps.
    literal_epochs : int, default=20
        The literal Stage I run: Stage II epochs of 100 steps (its Stage I is fixed).
    label : str, default="CPU default"
        Name of the mode in the report.
    """

    online_epochs: int
    lr: float
    lifted_steps: int
    lifted_batch: int
    lifted_every: int
    text_steps: int
    literal_epochs: int = 20
    label: str = "CPU default"


# CPU default: lr 0.5 (5x the paper's 0.1, the same gradient-flow path in time units) and
# ⌈2 T_emerge/lr⌉ + 400 Stage II steps, by 100; full: the paper's lr 0.1 and budgets.
CPU_SIZES = InductionSizes(94, 0.5, 3000, 200, 100, 2000)
FULL_SIZES = InductionSizes(460, 0.1, 50000, 1000, 500, 20000, label="paper size (--full)")


def sizes_for(full: bool, epochs: int | None = None) -> InductionSizes:
    """The run's budgets; ``epochs`` sets the Stage II epochs and scales the others alike.

    Parameters
    ----------
    full : bool
        Paper sizes (``--full``) instead of the CPU default.
    epochs : int or None, default=None
        Stage II epochs of Figs 3/9 (``--epochs``); the Fig 10, real-text and literal
        Stage II budgets are multiplied by ``epochs / online_epochs``.

    Returns
    -------
    sizes : InductionSizes
    """
    sizes = FULL_SIZES if full else CPU_SIZES
    if epochs is None:
        return sizes
    if epochs < 1:
        raise ValueError(f"epochs must be >= 1; got {epochs}.")
    factor = epochs / sizes.online_epochs
    return replace(
        sizes, online_epochs=epochs,
        lifted_steps=max(sizes.lifted_every, round(sizes.lifted_steps * factor)),
        text_steps=max(1, round(sizes.text_steps * factor)),
        literal_epochs=max(1, round(sizes.literal_epochs * factor)),
    )


def _online(tokens: str, seq_len: int, epochs: int, lr: float, seed: int, settings: dict):
    sampler = InductionTaskSampler("mixed", seq_len=seq_len, alpha=1.0, w_star=0.49,
                                   tokens=tokens)
    X_eval, y_eval = sampler(20000, random_state=seed + 1)
    return InductionDynamicsRegressor(
        training="layerwise", optimizer="sgd", lr=lr,
        batch_size=1000, sampler=sampler, steps_per_epoch=100, max_epochs=epochs,
        random_state=seed, **settings,
    ).fit(X_eval, y_eval)


def _dynamics_figure(report: Report, models: dict):
    import matplotlib.pyplot as plt

    from .._plots import mark_phases

    figure, axes = plt.subplots(len(models), 2, figsize=(13, 4.2 * len(models)),
                                squeeze=False)
    rows = []
    for (loss_ax, param_ax), (name, model) in zip(axes, models.items(), strict=True):
        history = [model.stage_starts_[2]] + [r for r in model.history_ if r["stage"] == 2]
        t = np.array([r["time"] for r in history])
        for key in ("loss", "G4", "IH2"):
            loss_ax.semilogy(t, [r[key] for r in history], label=key)
        for key in ("g", "p", "w_K", "h"):
            param_ax.plot(t, [r[key] for r in history], label=key if key != "w_K"
                          else "w_K = w_Q")
        mark_phases([param_ax, loss_ax], model.phases_)
        loss_ax.set_title(f"{name} tokens: losses (Stage II)", fontsize="small")
        param_ax.set_title(f"{name} tokens: parameters", fontsize="small")
        loss_ax.set_ylabel("loss ½E‖f − y‖² (20 000 evaluation sequences)")
        param_ax.set_ylabel("parameter value")
        for ax in (loss_ax, param_ax):
            ax.set_xlabel("gradient-flow time t = lr × iterations")
        loss_ax.legend(fontsize="x-small", loc="upper right")
        param_ax.legend(fontsize="x-small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
        rows.append([name, *(model.phases_[k] for k in PHASES)])
        final = history[-1]
        rows[-1] += [final["g"], final["p"], final["w_K"], final["h"], final["IH2"]]
    figure.suptitle("Figs 3 and 9: the four phases of online SGD on the 6-parameter model",
                    fontsize="medium")
    report.save(figure, "fig3_fig9_four_phases")
    report.table(
        "Fig 3 / Fig 9: four phases of online SGD (α* = 1, w* = 0.49, σ_init = 0.01, L = 40)",
        ["tokens", *PHASES, "final g", "final p", "final w_K", "final h", "final L_IH2"], rows,
        note="Oracle Stage I (y_s = x_{s-1}); batch 1000, fresh every step; evaluation on "
        "20 000 fixed sequences every 100 steps. Calibration (math note §8.5): T_I ≈ 250, "
        "T_w ≈ 2250, T_half ≈ 2300, T_III ≈ 3200, plateau ≈ 1.9e-4; theory T_emerge = "
        f"{plateau_time_theory(40):.0f}. T_II (0.99 threshold) is fragile: the plateau drifts.",
    )


def _scaling(report: Report):
    import matplotlib.pyplot as plt
    from matplotlib.ticker import NullFormatter

    configs = {
        "L = 20": dict(seq_len=20), "L = 40": dict(), "L = 80": dict(seq_len=80),
        "L = 160": dict(seq_len=160), "σ = 0.1": dict(init_scale=0.1),
        "σ = 0.001": dict(init_scale=0.001), "σ = 1e-4": dict(init_scale=1e-4),
        "α* = 3": dict(alpha=3.0),
    }
    rows, half = [], {}
    for name, kwargs in configs.items():
        history = simulate_population(**kwargs)
        phases = detect_phases(history, alpha=kwargs.get("alpha", 1.0))
        theory = plateau_time_theory(kwargs.get("seq_len", 40), kwargs.get("alpha", 1.0),
                                     0.49, kwargs.get("init_scale", 0.01))
        half[name] = phases["T_half"]
        rows.append([name, theory, *(phases[k] for k in PHASES)])
    report.table(
        "Plateau scaling (population ODE, Euler step 0.5)",
        ["configuration", "theory ln(w*/σ)/λ", *PHASES], rows,
        note=f"T_half ratios: L 80/40 = {half['L = 80'] / half['L = 40']:.3f}, "
        f"L 20/40 = {half['L = 20'] / half['L = 40']:.3f}, α* 3/1 = "
        f"{half['α* = 3'] / half['L = 40']:.2f}; per decade of σ_init: "
        f"{half['σ = 0.001'] - half['L = 40']:.0f}, {half['σ = 1e-4'] - half['σ = 0.001']:.0f}.",
    )
    figure, (ax_L, ax_s) = plt.subplots(1, 2, figsize=(10, 4))
    lengths = [20, 40, 80, 160]
    ax_L.loglog(lengths, [half[f"L = {n}"] for n in lengths], "o-", label="ODE T_half")
    ax_L.loglog(lengths, [plateau_time_theory(n) for n in lengths], "k--", label="theory")
    ax_L.set_xlabel("sequence length L")
    ax_L.set_xticks(lengths, [str(n) for n in lengths])  # no overlapping minor labels
    ax_L.xaxis.set_minor_formatter(NullFormatter())
    sigmas = [0.1, 0.01, 0.001, 1e-4]
    names = ["σ = 0.1", "L = 40", "σ = 0.001", "σ = 1e-4"]
    ax_s.semilogx(sigmas, [half[n] for n in names], "o-", label="ODE T_half")
    ax_s.semilogx(sigmas, [plateau_time_theory(40, init_scale=s) for s in sigmas], "k--",
                  label="theory")
    ax_s.set_xlabel("σ_init (initial scale of the parameters)")
    ax_L.set_title("plateau length vs sequence length", fontsize="small")
    ax_s.set_title("plateau length vs initial scale", fontsize="small")
    for ax in (ax_L, ax_s):
        ax.set_ylabel("T_half (gradient-flow time)")
        ax.legend(fontsize="small")
    figure.suptitle("Plateau scaling (Thm 4.5): population ODE against ln(w*/σ)/λ",
                    fontsize="medium")
    report.save(figure, "plateau_scaling")


def _literal_stage_one(report: Report, epochs: int, seed: int, settings: dict):
    sampler = InductionTaskSampler("mixed", seq_len=40)
    X_eval, y_eval = sampler(5000, random_state=seed + 1)
    model = InductionDynamicsRegressor(
        training="layerwise", stage1="train",
        stage1_epochs=20, stage1_lr=5.0, optimizer="sgd", lr=0.5, batch_size=1000,
        sampler=sampler, steps_per_epoch=100, max_epochs=epochs, random_state=seed,
        **settings,
    ).fit(X_eval, y_eval)
    p_tilde = model.net_.module_.p_tilde.item()
    report.table(
        "The paper's Stage I taken literally (t = 10⁴ on p̃ alone from σ_init = 0.01)",
        ["p̃ after Stage I", f"L_G4 after t = {0.5 * 100 * epochs:g} of Stage II",
         "floor ½ g*² e^{-2p̃}"],
        [[p_tilde, model.history_[-1, "G4"], 0.5 * 0.25 * np.exp(-2 * p_tilde)]],
        note="The gradient on p̃ is proportional to g(0) = σ_init, so p̃ stays near 1 and the "
        "4-gram loss floors (math note §5.7); hence the oracle Stage I above.",
    )


def _in_context_part(d: int, lift: str, seed: int) -> float:
    """``½ E‖f*_IH − h* ū‖²``: what the dot-product head adds over the context mean."""
    X, y = make_induction_head_task("mixed", 2000, 40, d, lift=lift, random_state=seed)
    return 0.5 * float(np.mean(np.sum((y[:, d:] - 0.5 * uniform_attention_baseline(X, 2)) ** 2,
                                      axis=1)))


def _lifted(report: Report, sizes: InductionSizes, seed: int, settings: dict):
    """Fig 10: the 6-parameter model lifted to d = D = 100, GD vs Adam (lr 5e-4)."""
    import matplotlib.pyplot as plt

    d = 100
    sampler = InductionTaskSampler("mixed", seq_len=40, n_features=d)
    X_eval, y_eval = sampler(2000, random_state=seed + 1)
    steps, batch, every = sizes.lifted_steps, sizes.lifted_batch, sizes.lifted_every
    # The loss sums the d outputs (½ E‖·‖²); GD's lr is the Fig 3 lr per output, divided by d,
    # so that its time axis matches Fig 3 (the sum would otherwise make GD d times faster
    # and unstable). Adam is invariant to that scale.
    runs = {"GD": dict(optimizer="sgd", lr=sizes.lr / d),
            "Adam": dict(optimizer="adam", lr=5e-4)}
    models = {
        name: InductionDynamicsRegressor(
            training="layerwise", batch_size=batch,
            sampler=sampler, steps_per_epoch=every, max_epochs=max(1, steps // every),
            random_state=seed, **settings, **kwargs,
        ).fit(X_eval, y_eval)
        for name, kwargs in runs.items()
    }
    figure, (loss_ax, param_ax) = plt.subplots(1, 2, figsize=(12, 4))
    rows = []
    plateau = min(r["IH2"] for r in models["GD"].history_)
    for name, model in models.items():
        history = [model.stage_starts_[2], *model.history_]
        steps_axis = [r["iteration"] for r in history]
        color = {"GD": "tab:blue", "Adam": "tab:red"}[name]  # colour: optimizer; style: curve
        for key, style in (("G4", "--"), ("IH2", "-")):
            loss_ax.semilogy(steps_axis, [r[key] for r in history], style, color=color,
                             label=f"{name} L_{key}")
        for key, style in (("w_K", "-"), ("h", "--")):
            param_ax.plot(steps_axis, [r[key] for r in history], style, color=color,
                          label=f"{name} {'‖W_K‖_F' if key == 'w_K' else key}")
        below = [r["iteration"] for r in history if r["IH2"] < 0.5 * plateau]
        final = history[-1]
        rows.append([name, runs[name]["lr"], final["iteration"], final["G4"], final["IH2"],
                     below[0] if below else "never", final["w_K"], final["w_Q"], final["g"],
                     final["h"]])
    loss_ax.axhline(plateau, color="grey", ls=":", lw=0.8)
    loss_ax.set_title("partial losses (½ E‖·‖² over the 100 outputs); dotted: GD plateau",
                      fontsize="small")
    param_ax.set_title("parameters", fontsize="small")
    loss_ax.set_ylabel("loss (2000 evaluation sequences)")
    param_ax.set_ylabel("‖W_K‖_F and h")
    for ax in (loss_ax, param_ax):
        ax.set_xlabel("iterations")
        ax.legend(fontsize="x-small")
    figure.suptitle(f"Fig 10: the 6-parameter model lifted to D = {d}, gradient descent vs "
                    "Adam", fontsize="medium")
    report.save(figure, "fig10_gd_vs_adam")
    report.table(
        f"Fig 10: the 6-parameter model lifted to d = D = {d} (L = 40, α* = 1, w* = 0.49, "
        f"σ_init = 0.01, batch {batch}, oracle Stage I)",
        ["optimizer", "lr", "iterations", "final L_G4", "final L_IH2",
         "first iteration with L_IH2 < ½ GD plateau", "‖W_K‖_F", "‖W_Q‖_F", "g", "h"], rows,
        note=f"GD plateau (its smallest L_IH2) {plateau:.3g}. Target W* = w* I/√D "
        "(‖W*‖_F = w*; the paper's garbled '0.49 I_D/D' could also mean w* I/D, math note §6): "
        f"the in-context part of L_IH2 is {_in_context_part(d, 'sqrt', seed):.3g} with I/√D "
        f"and {_in_context_part(d, 'linear', seed):.3g} with I/D, where nothing would be "
        "visible. Linearised GD escape rate is λ/D (λ of Fig 3, math note §5.4): "
        "t ≈ 2·10⁵ per-output time units, far beyond both budgets.",
    )


def _real_text(report: Report, steps: int, seed: int, settings: dict):
    import matplotlib.pyplot as plt

    text = load_text()
    eval_every = max(1, min(100, steps // 4))
    _, history = train_char_model(text, steps=steps, eval_every=eval_every, random_state=seed,
                                  **settings)
    keys = ("held_out_ce", "slope_norm", "qk_norm", "previous_token_attention",
            "induction_attention", "copy1_ce", "copy2_ce")
    every = max(1, len(history) // 10)
    rows = [[(i + 1) * eval_every, *(row[k] for k in keys)]
            for i, row in enumerate(history) if (i + 1) % every == 0 or i == 0]
    report.table(
        f"Real text (Fig 8 substitute): {len(text)} characters, {len(set(text))} distinct",
        ["Adam step", "held-out CE", "‖slopes‖", "‖(W_K, W_Q)‖", "prev-token attn",
         "induction attn", "copy-1 CE", "copy-2 CE"], rows,
        note="Two layers, 2 heads, D = 64, FFN 256, scores scaled by 1/√D, LayerNorm before the "
        "unembedding, L = 128, B = 16, Adam 3e-3 (slopes ×10); CPython's pydoc_data.topics, "
        "90/10 split. Induction "
        "metrics on 64 random sequences of 24 characters repeated twice: copy-2 CE below "
        "copy-1 CE and induction attention well above 1/L would show an induction head.",
    )
    steps_axis = [(i + 1) * eval_every for i in range(len(history))]
    figure, axes = plt.subplots(1, 3, figsize=(14, 3.8))
    axes[0].plot(steps_axis, [r["held_out_ce"] for r in history], label="held-out CE")
    axes[0].plot(steps_axis, [r["copy1_ce"] for r in history], label="copy-1 CE")
    axes[0].plot(steps_axis, [r["copy2_ce"] for r in history], label="copy-2 CE")
    for key in ("slope_norm", "qk_norm"):
        values = np.array([r[key] for r in history])
        axes[1].plot(steps_axis, values / values[0], label=f"{key} / initial")
    for key in ("previous_token_attention", "induction_attention"):
        axes[2].plot(steps_axis, [r[key] for r in history], label=key)
    axes[0].set_ylabel("cross-entropy (nats per character)")
    axes[1].set_ylabel("norm relative to step " + str(eval_every))
    axes[2].set_ylabel("mean attention weight")
    for ax, title in zip(axes, ("loss", "weight norms", "attention scores"), strict=True):
        ax.set_xlabel("Adam steps")
        ax.set_title(title, fontsize="small")
        ax.legend(fontsize="x-small")
    figure.suptitle("Fig 8 substitute: a two-layer ALiBi transformer on characters of "
                    "CPython's documentation", fontsize="medium")
    report.save(figure, "fig8_real_text")


def run(out_dir, *, sizes, seed=0, device="auto", verbosity=0) -> str:
    """Run the dynamics experiments, write PNGs and ``report.md``; return the report.

    Parameters
    ----------
    out_dir : str or Path
        Output folder (created).
    sizes : InductionSizes
        Training budgets, e.g. ``sizes_for(full, epochs)``.
    seed : int, default=0
        Seed.
    device : str, default="auto"
        Torch device of every model.
    verbosity : {0, 1, 2}, default=0
        1: a line per finished table; 2: also skorch's per-epoch log of every training run.

    Returns
    -------
    report : str
    """
    epochs = sizes.online_epochs
    mode = (f"6-parameter model, online SGD lr {sizes.lr}, batch 1000, "
            f"{100 * epochs} Stage II steps; population ODE for the scaling")
    report = Report(out_dir, "Induction heads: training dynamics", sizes, seed, mode=mode,
                    progress=verbosity >= 1)
    settings = dict(device=device, verbose=int(verbosity >= 2))
    models = {tokens: _online(tokens, 40, epochs, sizes.lr, seed, settings)
              for tokens in ("gaussian", "boolean")}
    _dynamics_figure(report, models)
    _scaling(report)
    _literal_stage_one(report, sizes.literal_epochs, seed, settings)
    _lifted(report, sizes, seed, settings)
    _real_text(report, sizes.text_steps, seed, settings)
    return report.write()
