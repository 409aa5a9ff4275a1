"""dingo_train on the command line: a run cut by --stop-after-epochs, resumed from its checkpoint."""

import pytest
import torch

from dingo_gw.cli.train import main
from dingo_gw.nn import load_network


def run(argv, capsys):
    with pytest.raises(SystemExit) as e:
        main(argv)
    return e.value.code, capsys.readouterr()


def test_cli_stop_and_resume_from_checkpoint(write_config, tmp_path, capsys):
    cfg = write_config("cli", model={"gnpe": None})
    code, out = run([str(cfg), "--stop-after-epochs", "1", "--no-progress"], capsys)
    ckpt = tmp_path / "cli" / "checkpoint.pt"
    assert code == 0 and f"continue with: dingo_train --resume {ckpt}" in out.out
    assert not (tmp_path / "cli" / "network.pt").exists()

    code, out = run(["--resume", str(ckpt), "--num-threads", "1"], capsys)  # the checkpoint's config
    assert code == 0 and out.out.startswith("finished:")
    model, meta = load_network(tmp_path / "cli" / "network.pt")
    assert meta["training"]["summary"]["epochs"] == 2
    assert meta["training"]["config"]["local"]["num_threads"] == 1
    with torch.no_grad():
        x = torch.zeros((1, *model.embedding.input_shape))
        assert torch.isfinite(model.sample(x, num_samples=4)).all()

    code, out = run([str(cfg), "--resume"], capsys)  # nothing left to do
    assert code == 0 and out.out.startswith("already_finished:")
    code, out = run([str(cfg)], capsys)  # a new run would overwrite it: refused
    assert code == 2 and "already holds a training run" in out.err
