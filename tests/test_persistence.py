"""pickle/joblib round trips and the safe save/load format."""

import pickle
import zipfile

import joblib
import numpy as np
import pytest

from skloop import ExactPCA, InductionHeadRegressor, LoopedTransformerPCA, PowerIterationPCA
from skloop.datasets import make_induction_head_task, make_sphere_matrices

X = make_sphere_matrices(200, n_points=12, n_features=4, random_state=0)
SEQ, TARGET = make_induction_head_task("ih2", 200, 8, random_state=0)


def _fitted():
    return [
        (ExactPCA(n_components=2).fit(X), X),
        (PowerIterationPCA(6, shift=2.0, random_state=1).fit(X), X),
        (LoopedTransformerPCA(max_epochs=2, inference_loops=7, random_state=0).fit(X), X),
        (LoopedTransformerPCA(objective="layerwise", parametrization="scalar", max_epochs=2,
                              random_state=0).fit(X), X),
        (InductionHeadRegressor(max_epochs=2, random_state=0).fit(SEQ, TARGET[:, 0]), SEQ),
        (InductionHeadRegressor(max_epochs=1, dtype="float64", ffn_width=4,
                                random_state=0).fit(SEQ, TARGET), SEQ),
        (InductionHeadRegressor.from_construction("ihn", n_gram=3, eps=0.01), SEQ),
    ]


def _plain(params):
    """Parameters as JSON keeps them: tuples become lists; callbacks are not saved."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in params.items()
            if k != "callbacks"}


CASES = _fitted()
IDS = ["exact", "power", "looped", "looped-scalar", "induction", "induction-f64", "oracle"]


@pytest.mark.parametrize("estimator, data", CASES, ids=IDS)
def test_pickle_and_joblib_round_trips_are_bit_identical(estimator, data, tmp_path):
    expected = estimator.predict(data)
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(estimator)).predict(data), expected)
    joblib.dump(estimator, tmp_path / "model.joblib")
    np.testing.assert_array_equal(joblib.load(tmp_path / "model.joblib").predict(data), expected)


@pytest.mark.parametrize("estimator, data", CASES, ids=IDS)
def test_save_load_is_bit_identical_and_keeps_history(estimator, data, tmp_path):
    path = estimator.save(tmp_path / "model.skl")
    restored = type(estimator).load(path)
    np.testing.assert_array_equal(restored.predict(data), estimator.predict(data))
    assert _plain(restored.get_params()) == _plain(estimator.get_params())
    if len(getattr(estimator, "history_", [])):
        assert restored.history_[:, "train_loss"] == estimator.history_[:, "train_loss"]
    # The file is a plain zip of tensors + JSON: loadable with weights_only=True.
    assert zipfile.is_zipfile(path)


def test_load_checks_class_truncation_tampering_and_garbage(tmp_path):
    model = LoopedTransformerPCA(max_epochs=1, random_state=0).fit(X)
    path = model.save(tmp_path / "model.skl")
    raw = path.read_bytes()
    with pytest.raises(ValueError, match="not a ExactPCA|holds a LoopedTransformerPCA"):
        ExactPCA.load(path)
    (tmp_path / "truncated.skl").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(ValueError, match="not a readable skloop model file"):
        LoopedTransformerPCA.load(tmp_path / "truncated.skl")
    # Flip one byte inside the stored weights: the content checksum catches it.
    with zipfile.ZipFile(path) as archive:
        info = next(i for i in archive.infolist() if "/data/" in i.filename and i.file_size > 64)
    local = raw[info.header_offset : info.header_offset + 30]  # the local file header
    name_length, extra_length = int.from_bytes(local[26:28], "little"), int.from_bytes(
        local[28:30], "little")
    data_start = info.header_offset + 30 + name_length + extra_length
    tampered = bytearray(raw)
    tampered[data_start + 8] ^= 0xFF
    (tmp_path / "tampered.skl").write_bytes(bytes(tampered))
    with pytest.raises(ValueError, match="checksum|not a .*valid|not a readable"):
        LoopedTransformerPCA.load(tmp_path / "tampered.skl")
    (tmp_path / "garbage.skl").write_bytes(b"not a model at all")
    with pytest.raises(ValueError, match="skloop model file"):
        LoopedTransformerPCA.load(tmp_path / "garbage.skl")
    # A pickle with code in it is refused by weights_only loading, never executed.
    (tmp_path / "evil.skl").write_bytes(pickle.dumps(model))
    with pytest.raises(ValueError, match="skloop model file"):
        LoopedTransformerPCA.load(tmp_path / "evil.skl")
    with pytest.raises(FileNotFoundError):
        LoopedTransformerPCA.load(tmp_path / "missing.skl")


def test_save_needs_a_fitted_estimator_and_a_plain_seed(tmp_path):
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        ExactPCA().save(tmp_path / "x.skl")
    model = PowerIterationPCA(random_state=np.random.RandomState(0)).fit(X)
    with pytest.raises(ValueError, match="random_state"):
        model.save(tmp_path / "x.skl")


def test_model_saved_with_a_cuda_device_loads_on_cpu(tmp_path):
    model = LoopedTransformerPCA(max_epochs=1, random_state=0, device="cuda:0")
    model.set_params(device="cpu").fit(X)
    model.device = "cuda:0"  # as if trained on a GPU: the file stores the parameter only
    path = model.save(tmp_path / "gpu.skl")
    restored = LoopedTransformerPCA.load(path, device="cpu")
    assert str(restored.net_.device) == "cpu" and restored.device == "cpu"
    np.testing.assert_array_equal(restored.predict(X), model.predict(X))


def test_saved_cuda_device_falls_back_to_cpu_without_cuda(tmp_path):
    import torch

    model = LoopedTransformerPCA(max_epochs=1, random_state=0).fit(X)
    model.device = "cuda"
    restored = LoopedTransformerPCA.load(model.save(tmp_path / "m.skl"))
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert restored.device == expected
    np.testing.assert_allclose(restored.predict(X), model.predict(X), atol=1e-12)


def test_file_without_a_dtype_parameter_keeps_its_weights_dtype(tmp_path):
    # Files written before LoopedTransformerPCA had `dtype` hold float64 weights and no such
    # parameter; they must load as float64, not as today's float32 default.
    import json

    import torch

    from skloop._core.persistence import _checksum

    model = LoopedTransformerPCA(max_epochs=1, random_state=0, dtype="float64").fit(X)
    path = model.save(tmp_path / "old.skl")
    payload = torch.load(path, map_location="cpu", weights_only=True)
    params = json.loads(payload["params"])
    del params["dtype"], params["compile"]
    payload["params"] = json.dumps(params)
    payload["checksum"] = _checksum(payload)
    torch.save(payload, path)
    restored = LoopedTransformerPCA.load(path)
    assert restored.dtype == "float64"
    np.testing.assert_array_equal(restored.predict(X), model.predict(X))


def _rewrite(path, change):
    """Edit a saved file's header with ``change(payload)`` and recompute its checksum (a file
    written by another version, or a forged one)."""
    import torch

    from skloop._core.persistence import _checksum

    payload = torch.load(path, map_location="cpu", weights_only=True)
    change(payload)
    payload["checksum"] = _checksum(payload)
    torch.save(payload, path)
    return path


def test_files_of_the_previous_layout_load(tmp_path):
    # 0.1 saved the 6-parameter model as InductionHeadRegressor(architecture="reparameterized")
    # with the stage parameters, and the transformer with unused stage parameters.
    import json

    from skloop import InductionDynamicsRegressor

    X_mixed, y_mixed = make_induction_head_task("mixed", 200, 12, random_state=0)
    model = InductionDynamicsRegressor(optimizer="adam", lr=2e-3, batch_size=100, max_epochs=2,
                                       random_state=0)
    model.fit(X_mixed, y_mixed)

    def as_old_dynamics(payload):
        params = json.loads(payload["params"])
        params.update(architecture="reparameterized", n_heads=2, d_model=None, n_layers=2,
                      init_scale="auto")
        payload["params"] = json.dumps(params)
        payload["estimator"] = "InductionHeadRegressor"
        fitted = json.loads(payload["fitted"])
        del fitted["phases_"], fitted["stage_starts_"]
        payload["fitted"] = json.dumps(fitted)

    path = _rewrite(model.save(tmp_path / "old.skl"), as_old_dynamics)
    with pytest.raises(ValueError, match="holds a InductionDynamicsRegressor"):
        InductionHeadRegressor.load(path)
    restored = InductionDynamicsRegressor.load(path)
    # training="joint" (0.1's default) with the oracle is the same run as the default: dropped.
    assert (restored.training, restored.init_scale, restored.lr) == ("layerwise", 0.01, 2e-3)
    np.testing.assert_array_equal(restored.predict(X_mixed), model.predict(X_mixed))

    standard = InductionHeadRegressor(max_epochs=1, random_state=0).fit(SEQ, TARGET)

    def as_old_standard(payload):
        params = json.loads(payload["params"])
        params.update(training="joint", stage1="oracle", stage1_epochs=10, stage1_lr=None,
                      stage1_target_p=None)
        payload["params"] = json.dumps(params)

    path = _rewrite(standard.save(tmp_path / "old_standard.skl"), as_old_standard)
    np.testing.assert_array_equal(InductionHeadRegressor.load(path).predict(SEQ),
                                  standard.predict(SEQ))


def test_a_forged_file_with_invalid_hyper_parameters_is_refused(tmp_path):
    import json

    model = LoopedTransformerPCA(max_epochs=1, random_state=0).fit(X)

    def forge(payload):
        params = json.loads(payload["params"])
        params["n_loops"] = -5
        payload["params"] = json.dumps(params)

    path = _rewrite(model.save(tmp_path / "forged.skl"), forge)
    with pytest.raises(ValueError, match="invalid hyper-parameters.*'n_loops'"):
        LoopedTransformerPCA.load(path)


def test_a_failed_save_keeps_the_existing_file(tmp_path, monkeypatch):
    import torch

    model = PowerIterationPCA(5, random_state=0).fit(X)
    path = model.save(tmp_path / "model.skl")
    good = path.read_bytes()

    def fail_half_way(obj, file, *args, **kwargs):
        file.write(b"partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", fail_half_way)
    with pytest.raises(OSError, match="No space left"):
        LoopedTransformerPCA(max_epochs=1, random_state=0).fit(X).save(path)
    monkeypatch.undo()
    assert path.read_bytes() == good
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.skl"]  # no temporary left
    np.testing.assert_array_equal(PowerIterationPCA.load(path).predict(X), model.predict(X))


def test_save_to_a_folder_a_missing_folder_or_a_file_object_is_refused(tmp_path):
    import io

    model = ExactPCA().fit(X)
    with pytest.raises(IsADirectoryError, match="is a directory"):
        model.save(tmp_path)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        model.save(tmp_path / "missing" / "model.skl")
    with pytest.raises(TypeError, match="file path"):
        model.save(io.BytesIO())
