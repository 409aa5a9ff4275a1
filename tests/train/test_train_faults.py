"""dingo_train under faults: a second run into one output_dir, a full disk at the checkpoint, and
--resume of a finished run whose network.pt was deleted (written again from the checkpoint)."""

import errno
import os

import pytest
import torch

from dingo_gw.cli.train import main
from dingo_gw.io.lock import output_lock
from dingo_gw.nn import load_network


def run(argv, capsys):
    with pytest.raises(SystemExit) as e:
        main([str(a) for a in argv])
    return e.value.code, capsys.readouterr()


def test_second_run_and_full_disk(write_config, tmp_path, capsys, monkeypatch):
    cfg = write_config("locked", model={"gnpe": None})
    out = tmp_path / "locked"
    out.mkdir()
    with output_lock(out, folder=True):
        code, res = run([cfg, "--no-progress"], capsys)
    assert code == 2 and f"is being written by another process (pid {os.getpid()})" in res.err
    assert os.listdir(out) == []

    def full(obj, path):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("dingo_gw.train.checkpoint.save_torch", full)
    code, res = run([cfg, "--no-progress", "--stop-after-epochs", "1"], capsys)
    assert code == 2 and "disk full (No space left on device)" in res.err and "Traceback" not in res.err
    assert not [p for p in os.listdir(out) if p.endswith((".tmp", ".lock"))]


def test_resume_rewrites_a_deleted_network(write_config, tmp_path, capsys):
    cfg = write_config("done", model={"gnpe": None})
    code, _ = run([cfg, "--no-progress"], capsys)
    assert code == 0
    network = tmp_path / "done" / "network.pt"
    before = load_network(network)[0].state_dict()
    network.unlink()
    code, res = run([cfg, "--resume", "--no-progress"], capsys)
    assert code == 0 and network.exists(), res.err
    after = load_network(network)[0].state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
