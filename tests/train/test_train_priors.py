"""A training prior of its own for a parameter the network does not infer (the distance): the
training data follow it, the network file keeps the analysis prior."""

import numpy as np
import pytest
import torch
from scipy import stats

from dingo_gw.cli.train import main
from dingo_gw.errors import ConfigError
from dingo_gw.nn import load_network
from dingo_gw.train.config import load_train_config
from dingo_gw.train.data import load_training_data

PARAMS = ["chirp_mass", "mass_ratio", "geocent_time", "ra", "dec", "theta_jn", "psi"]  # no distance
UNIFORM = "Uniform(minimum=100.0, maximum=2000.0)"


def test_training_distance_prior_draws_training_data_and_keeps_the_analysis_prior(write_config, tmp_path, capsys):
    cfg = write_config("dl", model={"gnpe": None},
                       data={"inference_parameters": PARAMS, "training_extrinsic_prior": {"luminosity_distance": UNIFORM}})
    config = load_train_config(cfg)
    data = load_training_data(config, torch.device("cpu"))
    pipe = data.pipeline("main", config.data.asd_datasets)
    d = pipe.extrinsic.sample(20_000, torch.Generator().manual_seed(1))["luminosity_distance"].numpy()
    # independent reference: scipy's uniform distribution on [100, 2000] Mpc
    assert stats.kstest(d, stats.uniform(loc=100.0, scale=1900.0).cdf).pvalue > 1e-3
    # the analysis prior (uniform in comoving volume) would put far fewer signals below 450 Mpc
    assert abs(np.mean(d < 450.0) - 350.0 / 1900.0) < 0.01

    with pytest.raises(SystemExit) as e:
        main([str(cfg), "--no-progress", "--num-threads", "1"])
    assert e.value.code == 0, capsys.readouterr().err
    _, meta = load_network(tmp_path / "dl" / "network.pt")
    assert "UniformComovingVolume" in meta["prior"]["luminosity_distance"]
    assert "UniformComovingVolume" in meta["extrinsic_prior"]["luminosity_distance"]
    assert meta["training_extrinsic_prior"]["luminosity_distance"].startswith("Uniform(")
    assert meta["extrinsic_prior"]["ra"] == meta["training_extrinsic_prior"]["ra"]


def test_training_prior_for_an_inferred_parameter_is_refused(write_config):
    cfg = write_config("bad", data={"training_extrinsic_prior": {"luminosity_distance": UNIFORM}})  # distance inferred
    with pytest.raises(ConfigError, match="training_extrinsic_prior: 'luminosity_distance' is inferred"):
        load_train_config(cfg)
