"""``compile=True``: training under torch.compile gives the eager model, and persists like it."""

import pickle

import numpy as np
import pytest
import torch

from skloop import InductionHeadRegressor, LoopedTransformerPCA
from skloop.datasets import make_induction_head_task, make_sphere_matrices


@pytest.mark.parametrize("kind", ["pca", "induction"])
def test_compiled_training_matches_eager_and_round_trips(kind, tmp_path):
    # Compiled kernels may reassociate float32 sums: agreement to ~1e-5 after a few epochs,
    # not bit-identity. The saved file holds the plain module's weights (no _orig_mod prefix),
    # and the compiled module is rebuilt on load.
    if kind == "pca":
        X, y = make_sphere_matrices(256, 16, 8, random_state=0), None
        make = lambda **kw: LoopedTransformerPCA(objective="layerwise", max_epochs=2,  # noqa: E731
                                                 random_state=0, **kw)
    else:
        X, y = make_induction_head_task("ih2", 256, 10, random_state=0)
        make = lambda **kw: InductionHeadRegressor(max_epochs=2, random_state=0, **kw)  # noqa: E731
    eager = make().fit(X, y)
    compiled = make(compile=True).fit(X, y)
    assert type(compiled.net_.module_).__name__ == "OptimizedModule"
    np.testing.assert_allclose(compiled.predict(X), eager.predict(X), atol=1e-5)
    assert compiled.history_[-1, "train_loss"] == pytest.approx(eager.history_[-1, "train_loss"],
                                                                rel=1e-4)
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(compiled)).predict(X),
                                  compiled.predict(X))
    compiled.save(tmp_path / "model.skl")
    loaded = type(compiled).load(tmp_path / "model.skl")
    np.testing.assert_array_equal(loaded.predict(X), compiled.predict(X))
    # The file stores the plain module's parameter names, exactly as an eager model's.
    payload = torch.load(tmp_path / "model.skl", map_location="cpu", weights_only=True)
    keys = set(payload["state_dict"])
    assert keys == set(eager.net_.module_.state_dict()) and not any("_orig_mod" in k for k in keys)
