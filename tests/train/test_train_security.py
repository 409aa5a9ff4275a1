"""``dingo_train --resume CKPT`` takes its config from the checkpoint: a prior string planted there
must be refused (one ``error:`` line, exit 2) without running (see tests/test_security.py)."""

import pytest

from dingo_gw.cli.train import main
from dingo_gw.train import load_train_config
from dingo_gw.train.checkpoint import checkpoint_dict, save_checkpoint


@pytest.mark.parametrize("key, name", [("extrinsic_prior", "ra"), ("training_extrinsic_prior", "luminosity_distance")])
def test_checkpoint_config_payload_is_refused(write_config, tmp_path, capsys, key, name):
    marker = tmp_path / "pwned"
    evil = f"Uniform(minimum=[__import__('pathlib').Path('{marker}').touch(),2][1],maximum=1)"
    config = load_train_config(write_config("run")).to_dict()
    if key == "training_extrinsic_prior":  # only for a parameter the network does not infer
        config["data"]["inference_parameters"].remove(name)
    config["data"][key] = {**(config["data"].get(key) or {}), name: evil}
    out = tmp_path / "run"
    out.mkdir(exist_ok=True)
    ckpt = save_checkpoint(out / "checkpoint.pt", checkpoint_dict(config, completed={}, job=None, finished=False))
    with pytest.raises(SystemExit) as e:
        main(["--resume", str(ckpt), "--no-progress"])
    assert e.value.code == 2
    err = [line for line in capsys.readouterr().err.strip().splitlines() if line.startswith("error:")]
    assert len(err) == 1 and f"prior.{name}: invalid bilby prior" in err[0] and "not allowed" in err[0], err
    assert not marker.exists()
    assert not (out / "network.pt").exists()
