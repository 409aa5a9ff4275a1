"""Embedding network: SVD-initialised projection computes the basis coefficients d·V; configs."""

import numpy as np
import pytest
import torch

from dingo_gw.errors import ConfigError, DataError
from dingo_gw.nn import EmbeddingNet, build_model, complete_model_config, projection_basis, svd_basis
from dingo_gw.nn.config import EmbeddingConfig



def test_svd_initialised_projection_gives_basis_coefficients():
    rng = np.random.default_rng(0)
    n_det, n_bins, n_basis = 2, 40, 5
    # whitened "waveforms": random combinations of 5 smooth complex templates, per detector
    f = np.linspace(0, 1, n_bins)
    templates = np.stack([np.exp(2j * np.pi * (k + 1) * f) * np.exp(-k * f) for k in range(n_basis)])
    data = [rng.normal(size=(200, n_basis)) @ templates + 1j * rng.normal(size=(200, n_basis)) @ templates
            for _ in range(n_det)]
    V = projection_basis(torch.as_tensor(np.stack(data, axis=1)), n_basis)  # (n_det, n_bins, n_basis)
    assert torch.equal(V[1], svd_basis(torch.as_tensor(data[1]), n_basis))
    # V has orthonormal columns spanning the data (numpy SVD as the independent reference)
    for d, v in zip(data, V.numpy()):
        assert np.allclose(v.conj().T @ v, np.eye(n_basis), atol=1e-10)
        assert np.allclose(d @ v @ v.conj().T, d, atol=1e-8)
        _, s_np, _ = np.linalg.svd(d, full_matrices=False)
        assert np.allclose(np.linalg.norm(d @ v), np.linalg.norm(s_np[:n_basis]))

    cfg = EmbeddingConfig(n_detectors=n_det, n_channels=3, n_bins=n_bins, n_basis=n_basis + 2,
                          hidden_dims=[8], output_dim=4)
    net = EmbeddingNet(cfg).double()
    net.projection.init_from_basis(V)
    x = np.stack([np.stack([d[:3].real, d[:3].imag, rng.uniform(0.5, 2, size=(3, n_bins))], axis=1) for d in data],
                 axis=1)  # (3 samples, n_det, 3 channels, n_bins)
    out = net.projection(torch.as_tensor(x)).detach().view(3, n_det, 2 * (n_basis + 2)).numpy()
    for i in range(n_det):
        coeff = data[i][:3] @ V[i].numpy()
        assert np.allclose(out[:, i, :n_basis], coeff.real, atol=1e-10)
        assert np.allclose(out[:, i, n_basis + 2:2 * n_basis + 2], coeff.imag, atol=1e-10)


def test_projection_is_per_detector_and_shapes_are_checked():
    cfg = EmbeddingConfig(n_detectors=2, n_bins=10, n_basis=3, hidden_dims=[8], output_dim=4)
    net = EmbeddingNet(cfg)
    x = torch.randn(5, 2, 3, 10)
    y = net.projection(x).view(5, 2, 6)
    x2 = x.clone()
    x2[:, 1] += 1.0  # changing detector 1 leaves detector 0's features unchanged
    y2 = net.projection(x2).view(5, 2, 6)
    assert torch.equal(y[:, 0], y2[:, 0]) and not torch.allclose(y[:, 1], y2[:, 1])
    with pytest.raises(DataError, match="expects"):
        net(torch.randn(5, 2, 3, 11))
    with pytest.raises(DataError, match="SVD basis has shape"):
        net.projection.init_from_basis(torch.zeros(2, 9, 3, dtype=torch.complex64))
    with pytest.raises(DataError, match="fewer than n_basis"):
        svd_basis(torch.zeros(2, 10, dtype=torch.complex64), 3)


def test_model_config_errors_name_the_key():
    with pytest.raises(ConfigError, match="embedding.n_basis"):
        complete_model_config({"type": "npe", "embedding": {"n_basis": -1}}, theta_dim=2, proxy_dim=0,
                              input_shape=(1, 3, 10))
    with pytest.raises(ConfigError, match="flow.bogus: unknown key"):
        complete_model_config({"type": "npe", "flow": {"bogus": 1}}, theta_dim=2, proxy_dim=0, input_shape=(1, 3, 10))
    with pytest.raises(ConfigError, match="type"):
        complete_model_config({"type": "gan"}, theta_dim=2, proxy_dim=0, input_shape=(1, 3, 10))
    with pytest.raises(ConfigError, match="theta_dim"):
        build_model({"type": "fmpe"})


def test_frozen_projection_gets_no_gradient():
    cfg = complete_model_config({"type": "npe", "embedding": {"n_basis": 2, "hidden_dims": [8], "output_dim": 4},
                                 "flow": {"hidden_features": [8], "transforms": 1}},
                                theta_dim=2, proxy_dim=1, input_shape=(1, 3, 6))
    model = build_model(cfg)
    model.set_projection_trainable(False)
    model(torch.randn(4, 2), torch.randn(4, 1, 3, 6), torch.randn(4, 1)).backward()
    assert model.embedding.projection.weight.grad is None
    assert model.embedding.resnet.input.weight.grad is not None
    with pytest.raises(DataError, match="GNPE proxies"):
        model.loss(torch.randn(4, 2), torch.randn(4, 1, 3, 6))
