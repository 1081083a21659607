"""
The four phases of learning an induction head
=============================================

The paper's 6-parameter model learns the 4-gram part of a mixed target at once, then sits on
a plateau while the dot-product weights grow exponentially from their small initialization,
then learns the induction head. ``phases_`` marks the phases; the population ODE gives the same
times without noise, and ``plateau_time_theory`` predicts the plateau.
"""

from skloop import InductionDynamicsRegressor
from skloop.datasets import InductionTaskSampler
from skloop.induction import detect_phases, plateau_time_theory, simulate_population

sampler = InductionTaskSampler("mixed", seq_len=40, alpha=1.0, w_star=0.49)
X_eval, y_eval = sampler(10000, random_state=1)
model = InductionDynamicsRegressor(
    training="layerwise", optimizer="sgd", lr=0.5,
    batch_size=1000, sampler=sampler, steps_per_epoch=100, max_epochs=80, random_state=0,
).fit(X_eval, y_eval)
print("online SGD phases:", {k: round(v, 6) for k, v in model.phases_.items()})

ode = detect_phases(simulate_population(seq_len=40, alpha=1.0, w_star=0.49, init_scale=0.01))
print("population ODE phases:", {k: round(v, 6) for k, v in ode.items()})
print("theory:", round(plateau_time_theory(40)))
for L in (20, 80):
    half = detect_phases(simulate_population(seq_len=L))["T_half"]
    print(f"L={L}: T_half {half:.0f} (x{half / ode['T_half']:.2f} of L=40)")
