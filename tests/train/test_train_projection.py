"""The embedding's projection layer starts from the SVD of whitened bank waveforms, stays fixed
in a frozen stage and is trained in an unfrozen one."""

import numpy as np
import torch

from dingo_gw.noise.asd_dataset import load_asd_dataset
from dingo_gw.pipeline import DataPipeline, PolarizationSource
from dingo_gw.train import load_checkpoint, load_train_config, train
from dingo_gw.waveforms import load_bank


def captured_power(signals: np.ndarray, V: np.ndarray) -> float:
    """Mean over signals (N, n_bins) of the fraction of |d|^2 inside span(V) (V orthonormal)."""
    return float(np.mean(np.sum(np.abs(signals @ V) ** 2, -1) / np.sum(np.abs(signals) ** 2, -1)))


def test_projection_is_svd_of_whitened_signals_frozen_then_trained(write_config, tiny_files):
    cfg = load_train_config(write_config("proj", model={"gnpe": None}, training={"svd_samples": 500}))
    assert cfg.training.stages[0].freeze_projection and not cfg.training.stages[1].freeze_projection
    assert train(cfg, stop_after_epochs=1).outcome == "stopped"  # after the frozen stage
    state = load_checkpoint(cfg.output_dir)["job"]["state"]
    W = state["state_dict"]["embedding.projection.weight"].double().numpy()  # (n_det, 3 n, 2 nb)
    n_det, n3, nb2 = W.shape
    n, nb = n3 // 3, nb2 // 2
    # the weights still have the exact structure [Re, Im](d V) of the initialisation: the frozen
    # stage did not touch them (any gradient step would break these equalities)
    Vr, Vi = W[:, :n, :nb], W[:, :n, nb:]
    assert np.array_equal(W[:, n:2 * n, :nb], -Vi) and np.array_equal(W[:, n:2 * n, nb:], Vr)
    assert not W[:, 2 * n:].any()  # the ASD channel starts with zero weight
    V = Vr + 1j * Vi  # (n_det, n, nb)
    for i in range(n_det):
        np.testing.assert_allclose(V[i].conj().T @ V[i], np.eye(nb), atol=1e-5)

    # noise-free whitened signals simulated independently of the trainer: a reference SVD basis
    # from 500 of them (as many as the trainer used), and 400 held-out ones to compare on
    bank, asds = load_bank(tiny_files[0]), load_asd_dataset(tiny_files[1])
    pipe = DataPipeline(domain=bank.domain, detectors=["H1", "L1"], ref_time=cfg.data.ref_time,
                        polarizations=PolarizationSource.from_bank(bank), parameters=bank.parameters,
                        asds=asds.asds, inference_parameters=["chirp_mass"], gnpe=None, stats_samples=1000)
    fit = pipe.whitened_signals(500, torch.Generator().manual_seed(98)).numpy()  # (1000, n_det, n)
    held_out = pipe.whitened_signals(400, torch.Generator().manual_seed(99)).numpy()
    rng = np.random.default_rng(0)
    for i in range(n_det):
        ref = np.linalg.svd(fit[:, i], full_matrices=False)[2][:nb].conj().T
        random = np.linalg.qr(rng.normal(size=(n, nb)) + 1j * rng.normal(size=(n, nb)))[0]
        got, expected, chance = (captured_power(held_out[:, i], B) for B in (V[i], ref, random))
        assert got > 0.9 * expected, (got, expected)  # as good as an SVD basis of whitened signals
        assert got > 10 * chance, (got, chance)

    # the unfrozen second stage trains the projection
    train(cfg, resume=True)
    W2 = load_checkpoint(cfg.output_dir)["job"]["state"]["state_dict"]["embedding.projection.weight"].double().numpy()
    assert np.abs(W2 - W).max() > 1e-6


def test_decompressed_bank_equals_the_banks_own_decompression(tiny_files):
    """data.decompress_bank holds h+/h× as arrays: equal to the bank reader's decompression."""
    from dingo_gw.train.data import decompressed_source

    bank = load_bank(tiny_files[0])
    assert bank.svd is not None
    src = decompressed_source(bank, "cpu", chunk=64)  # several chunks
    k = bank.domain.min_index
    idx = torch.tensor([0, 63, 64, 200, 299])
    hp, hc = src.get(idx)
    np.testing.assert_array_equal(hp.numpy(), bank.h_plus[idx.numpy(), k:])
    np.testing.assert_array_equal(hc.numpy(), bank.h_cross[idx.numpy(), k:])
