"""Bad input to dingo_train: one clear DingoError each, and one 'error:' line from the CLI."""

import shutil

import pytest
import yaml

from dingo_gw.cli.train import main
from dingo_gw.domain import FrequencyDomain
from dingo_gw.errors import ConfigError, DataError, DomainMismatchError, FileFormatError
from dingo_gw.train import load_train_config, train



def test_malformed_yaml_names_the_file(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("data: {bank: x.h5\nmodel: [")
    with pytest.raises(ConfigError, match=r"bad\.yaml: malformed YAML"):
        load_train_config(path)


@pytest.mark.parametrize("updates, key", [
    ({"training": {"stages": [{"epochs": 1, "batch_size": 8, "optimizer": {"lr": 1e-3, "learning_rate": 1}}]}},
     r"training\.stages\.0\.optimizer\.learning_rate: unknown key"),
    ({"training": {"stages": [{"epochs": 0, "batch_size": 8, "optimizer": {"lr": 1e-3}}]}},
     r"training\.stages\.0\.epochs"),
    ({"training": {"stages": [{"epochs": 1, "batch_size": 8, "optimizer": {"lr": 1e-3},
                               "scheduler": {"name": "exponential"}}]}}, r"training\.stages\.0\.scheduler"),
    ({"model": {"type": "maf"}}, r"model\.type"),
    ({"data": {"detectors": ["H1", "G1"]}}, r"data\.detectors: .*unknown detector 'G1'"),
    ({"local": {"device": "gpu"}}, r"local\.device"),
])
def test_invalid_keys_are_named(write_config, updates, key):
    with pytest.raises(ConfigError, match=rf"config error in .*\.yaml: {key}"):
        load_train_config(write_config("bad", **updates))


def test_missing_bank_and_asd_files(write_config, tmp_path):
    with pytest.raises(FileFormatError, match=r"waveform_bank file not found: .*nowhere\.h5"):
        train(load_train_config(write_config("a", data={"bank": "nowhere.h5"})))
    with pytest.raises(FileFormatError, match=r"asd_dataset file not found: .*no_asds\.h5"):
        train(load_train_config(write_config("b", data={"asd_dataset": "no_asds.h5"})))
    assert not (tmp_path / "a" / "checkpoint.pt").exists()


def test_asd_dataset_on_another_domain(write_config, asd_file, tmp_path):
    other = asd_file(tmp_path / "asd_0p5Hz.h5", FrequencyDomain(20.0, 128.0, 0.5))
    with pytest.raises(DomainMismatchError, match=r"domain mismatch for ASD dataset .*asd_0p5Hz\.h5 \(vs the bank .*bank\.h5\): delta_f = 0\.5 Hz, expected 0\.25 Hz"):
        train(load_train_config(write_config("c", data={"asd_dataset": str(other)})))


def test_unknown_inference_parameter(write_config):
    with pytest.raises(ConfigError, match=r"inference parameter 'chirp_mas' is neither"):
        train(load_train_config(write_config("d", data={"inference_parameters": ["chirp_mas", "ra"]})))


def test_batch_larger_than_training_set(write_config):
    stages = [{"epochs": 1, "batch_size": 5000, "optimizer": {"lr": 1e-3}}]
    with pytest.raises(ConfigError, match=r"training\.stages\[1\]\.batch_size = 5000 exceeds the 270 training"):
        train(load_train_config(write_config("e", model={"gnpe": None}, training={"stages": stages})))


def test_truncated_checkpoint_and_changed_config(write_config, tmp_path):
    cfg = load_train_config(write_config("run", model={"gnpe": None}))
    assert train(cfg, stop_after_epochs=1).outcome == "stopped"
    ckpt = tmp_path / "run" / "checkpoint.pt"

    # a fresh run into the same folder is refused
    with pytest.raises(ConfigError, match=r"already holds a training run .*--resume"):
        train(cfg)
    # resuming with another seed is refused, naming the key
    other = load_train_config(write_config("run", model={"gnpe": None}, seed=5))
    with pytest.raises(ConfigError, match=r"seed = 5 differs from the checkpoint's 1"):
        train(other, resume=True)

    cut = tmp_path / "cut.pt"
    data = ckpt.read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(FileFormatError, match=r"cannot read checkpoint .*cut\.pt: truncated"):
        train(cfg, resume=cut)
    junk = tmp_path / "junk.pt"
    shutil.copy(tmp_path / "run.yaml", junk)
    with pytest.raises(FileFormatError, match=r"junk\.pt: truncated, corrupt or not a torch file"):
        train(cfg, resume=junk)


def test_cli_prints_one_error_line(write_config, tmp_path, capsys):
    path = write_config("f", data={"bank": "missing_bank.h5"})
    with pytest.raises(SystemExit) as e:
        main([str(path), "--no-progress"])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: waveform_bank file not found")

    with pytest.raises(SystemExit) as e:
        main(["--resume", str(tmp_path / "none.pt")])
    assert e.value.code == 2
    assert capsys.readouterr().err.strip() == f"error: checkpoint not found: {tmp_path / 'none.pt'}"


@pytest.mark.parametrize("name", ["train_tiny.yaml", "train_cpu.yaml", "train_gpu.yaml"])
def test_shipped_configs_are_valid(project_root, name):
    cfg = load_train_config(project_root / "configs" / name)
    assert cfg.training.total_epochs >= 1
    assert cfg.model.gnpe is not None and cfg.init_network is not None
    assert yaml.safe_load((project_root / "configs" / name).read_text())["data"]["bank"].startswith("../out/")


def test_a_detector_may_come_from_one_asd_dataset_only(write_config, tiny_files, tmp_path):
    """Synthetic H1/L1 ASDs next to measured V1 ASDs (the H1+L1+V1 network's inputs): combined per
    detector; a detector that no dataset holds is one clear error naming it."""
    import numpy as np
    import torch

    from dingo_gw.noise.asd_dataset import ASDDataset, load_asd_dataset, save_asd_dataset
    from dingo_gw.train.data import load_training_data

    hl = load_asd_dataset(tiny_files[1])
    v1 = save_asd_dataset(ASDDataset(hl.domain, {"V1": 2.0 * hl.asds["H1"][:2]}, {}, {}), tmp_path / "v1.h5")
    cfg = load_train_config(write_config("hlv", data={"detectors": ["H1", "L1", "V1"],
                                                      "asd_dataset": [str(tiny_files[1]), str(v1)]}))
    combined = load_training_data(cfg, torch.device("cpu")).asd_dataset(cfg.data.asd_datasets)
    assert combined.detectors == ["H1", "L1", "V1"]
    assert combined.num_asds("H1") == hl.num_asds("H1") and combined.num_asds("V1") == 2
    band = slice(hl.domain.min_index, None)  # below f_min the file holds a placeholder
    np.testing.assert_array_equal(combined.asds["V1"][:, band], 2.0 * hl.asds["H1"][:2, band])

    only_hl = load_train_config(write_config("hl_only", data={"detectors": ["H1", "L1", "V1"]}))
    with pytest.raises(DataError, match=r"no ASD dataset has ASDs for V1 \(datasets: .*asd\.h5\)"):
        load_training_data(only_hl, torch.device("cpu"))
    v1_only = load_train_config(write_config("v1_only", data={"detectors": ["H1", "L1"], "asd_dataset": str(v1)}))
    with pytest.raises(DataError, match=r"v1\.h5: ASD dataset has none of the detectors H1, L1 \(it has V1\)"):
        load_training_data(v1_only, torch.device("cpu"))
