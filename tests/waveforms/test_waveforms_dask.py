"""dingo_generate_dataset --dask: shards run as tasks on a local Dask cluster, the client merges
and compresses; the bank equals a one-shot run bit for bit, and finished shards are not redone."""

import numpy as np
import pytest
import yaml

pytest.importorskip("distributed")

from distributed import Client, LocalCluster  # noqa: E402

from dingo_gw.cli.generate_dataset import main  # noqa: E402
from dingo_gw.errors import ConfigError  # noqa: E402
from dingo_gw.waveforms import BankConfig, generate_bank, load_bank  # noqa: E402
from dingo_gw.waveforms.dask_run import generate_bank_dask, parse_address  # noqa: E402

CONFIG = {
    "domain": {"f_min": 20.0, "f_max": 256.0, "delta_f": 0.25},
    "waveform": {"approximant": "IMRPhenomD", "f_ref": 20.0},
    "prior": {"chirp_mass": "bilby.gw.prior.UniformInComponentsChirpMass(minimum=20.0, maximum=40.0)",
              "mass_ratio": "bilby.gw.prior.UniformInComponentsMassRatio(minimum=0.3, maximum=1.0)",
              "chi_1": "bilby.gw.prior.AlignedSpin(a_prior=Uniform(0, 0.8), z_prior=Uniform(-1, 1))",
              "theta_jn": "Sine(minimum=0.0, maximum=3.141592653589793)", "phase": 0.3},
    "num_samples": 24,
    "seed": 7,
    "chunk_size": 8,
    "compression": {"svd": {"size": 6, "num_training_samples": 16, "num_validation_samples": 8}},
}


def assert_same_bank(a_path, b_path):
    a, b = load_bank(a_path), load_bank(b_path)
    for key in a.parameters:
        assert np.array_equal(a.parameters[key], b.parameters[key]), key
    assert np.array_equal(a.sample_index, b.sample_index)
    assert a.compressed == b.compressed
    if a.compressed:
        for pol in ("h_plus", "h_cross"):
            assert np.array_equal(a.coefficients(pol), b.coefficients(pol)), pol
        assert np.array_equal(a.svd.V, b.svd.V)
    assert np.array_equal(a.h_plus, b.h_plus) and np.array_equal(a.h_cross, b.h_cross)
    a_meta, b_meta = dict(a.metadata), dict(b.metadata)
    assert a_meta.pop("svd") == b_meta.pop("svd")
    assert a_meta == b_meta


@pytest.fixture(scope="module")
def client():
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) as cluster, \
            Client(cluster) as c:
        yield c


def test_dask_shards_give_the_one_shot_bank_and_skip_finished_shards(client, tmp_path):
    config = BankConfig.model_validate(CONFIG)
    one_shot = tmp_path / "one_shot.h5"
    generate_bank(config, one_shot, progress=False)

    # shard 2 of 3 finished in an earlier, interrupted run: it is reused, not generated again
    shards = tmp_path / "shards"
    shards.mkdir()
    done = shards / "bank_shard_2_of_3.h5"
    generate_bank(config, done, shard=(2, 3), progress=False)
    before = done.stat().st_mtime_ns

    out = tmp_path / "bank.h5"
    summary = generate_bank_dask(config, out, client, num_shards=3, shard_dir=shards, progress=False,
                                 keep_shards=True)
    assert summary.num_waveforms == 24 and summary.svd["size"] == 6
    assert done.stat().st_mtime_ns == before
    assert sorted(p.name for p in shards.iterdir()) == [f"bank_shard_{i}_of_3.h5" for i in (1, 2, 3)]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bank.h5", "one_shot.h5", "shards"]  # no temp files
    assert_same_bank(one_shot, out)


def test_dask_uncompressed_bank_and_shard_cleanup(client, tmp_path):
    cfg = {k: v for k, v in CONFIG.items() if k != "compression"}
    config = BankConfig.model_validate(cfg)
    one_shot = tmp_path / "one_shot.h5"
    generate_bank(config, one_shot, progress=False)
    out = tmp_path / "bank.h5"
    generate_bank_dask(config, out, client, num_shards=4, progress=False)  # default shard folder, removed
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bank.h5", "one_shot.h5"]
    assert_same_bank(one_shot, out)


def test_cli_dask_local_cluster(tmp_path, capsys):
    cfg = tmp_path / "bank.yaml"
    cfg.write_text(yaml.safe_dump({**{k: v for k, v in CONFIG.items() if k != "compression"}, "num_samples": 8}))
    out = tmp_path / "new" / "bank.h5"
    with pytest.raises(SystemExit) as exit_:
        main(["--config", str(cfg), "--out", str(out), "--dask", "local:1", "--shards", "2", "--no-progress"])
    assert exit_.value.code == 0
    assert "wrote" in capsys.readouterr().out and len(load_bank(out)) == 8


def test_addresses():
    assert parse_address("local") == ("local", None)
    assert parse_address("local:3") == ("local", 3)
    assert parse_address("tcp://10.0.0.1:8786") == ("remote", None)
    for bad in ("local:x", "local:0", " "):
        with pytest.raises(ConfigError):
            parse_address(bad)
