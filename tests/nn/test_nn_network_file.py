"""Network file: weights_only round trip, atomic write, refusal of foreign/old/corrupt files."""

import numpy as np
import pytest
import torch

from dingo_gw import FORMAT_VERSION
from dingo_gw.errors import FileFormatError
from dingo_gw.io.atomic import temporary_path
from dingo_gw.nn import build_model, complete_model_config, load_network, save_network

METADATA = {
    "domain": {"f_min": 20.0, "f_max": 64.0, "delta_f": 4.0, "window_factor": 1.0},
    "detectors": ["H1", "L1"],
    "inference_parameters": ["chirp_mass", "ra"],
    "standardization": {"keys": ["chirp_mass", "ra"], "mean": {"chirp_mass": 30.0, "ra": 3.1},
                        "std": {"chirp_mass": 5.0, "ra": 1.8}},
    "asd_reference": {"H1": np.float64(1e-23), "L1": 2e-23},
    "gnpe": {"kernel": 0.001, "relative": True},
    "training": {"epochs": 3, "lr": 1e-3, "array": np.arange(3)},
}



def small_model(kind):
    cfg = complete_model_config(
        {"type": kind, "embedding": {"n_basis": 3, "hidden_dims": [16], "output_dim": 8},
         "flow": {"hidden_features": [16], "transforms": 2}, "field": {"hidden_dims": [16, 16]}},
        theta_dim=2, proxy_dim=1, input_shape=(2, 3, 12))
    torch.manual_seed(0)
    return build_model(cfg).eval()


@pytest.mark.parametrize("kind", ["npe", "fmpe"])
def test_round_trip_gives_identical_outputs(tmp_path, kind):
    model = small_model(kind)
    path = save_network(tmp_path / "net.pt", model, METADATA)
    assert not temporary_path(path).exists()
    raw = torch.load(path, weights_only=True)  # plain types + tensors only
    assert raw["format_version"] == FORMAT_VERSION
    assert raw["metadata"]["asd_reference"]["H1"] == 1e-23
    assert raw["metadata"]["training"]["array"] == [0, 1, 2]
    assert "torch" in raw["metadata"]["package_versions"]

    loaded, meta = load_network(path)
    assert meta["detectors"] == ["H1", "L1"] and type(loaded) is type(model)
    x, p, th = torch.randn(3, 2, 3, 12), torch.randn(3, 1), torch.randn(3, 2)
    ode = {"ode": {"method": "rk4", "steps": 4}} if kind == "fmpe" else {}
    with torch.no_grad():
        assert torch.equal(model.log_prob(th, x, p, **ode), loaded.log_prob(th, x, p, **ode))
        torch.manual_seed(1)
        s1 = model.sample(x, p, num_samples=4, **ode)
        torch.manual_seed(1)
        s2 = loaded.sample(x, p, num_samples=4, **ode)
    assert torch.equal(s1, s2)


def test_refuses_other_format_version(tmp_path):
    path = save_network(tmp_path / "net.pt", small_model("npe"), METADATA)
    raw = torch.load(path, weights_only=True)
    raw["format_version"] = FORMAT_VERSION + 1
    torch.save(raw, tmp_path / "new.pt")
    with pytest.raises(FileFormatError, match="format version 2"):
        load_network(tmp_path / "new.pt")


def test_refuses_truncated_corrupt_and_foreign_files(tmp_path):
    path = save_network(tmp_path / "net.pt", small_model("fmpe"), METADATA)
    blob = path.read_bytes()
    (tmp_path / "cut.pt").write_bytes(blob[: len(blob) // 2])
    with pytest.raises(FileFormatError, match="truncated, corrupt"):
        load_network(tmp_path / "cut.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a torch file at all")
    with pytest.raises(FileFormatError, match="truncated, corrupt"):
        load_network(tmp_path / "junk.pt")
    torch.save({"weights": torch.zeros(3)}, tmp_path / "other.pt")
    with pytest.raises(FileFormatError, match="not a dingo_gw network file"):
        load_network(tmp_path / "other.pt")
    with pytest.raises(FileFormatError, match="not found"):
        load_network(tmp_path / "missing.pt")
    # weights that do not fit the stored architecture
    raw = torch.load(path, weights_only=True)
    raw["model_config"]["embedding"]["n_basis"] = 4
    torch.save(raw, tmp_path / "mismatch.pt")
    with pytest.raises(FileFormatError, match="weights do not match"):
        load_network(tmp_path / "mismatch.pt")


def test_unstorable_metadata_is_rejected_before_writing(tmp_path):
    with pytest.raises(TypeError, match="metadata.bad"):
        save_network(tmp_path / "net.pt", small_model("npe"), {"bad": object()})
    assert not (tmp_path / "net.pt").exists()
