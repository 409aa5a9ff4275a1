"""Distributed data parallel: 2 CPU processes (gloo) under torchrun hold identical weights."""


import torch

from dingo_gw.nn import load_network
from dingo_gw.train import load_checkpoint
from dingo_gw.train.distributed import state_hash


def test_two_gloo_processes_keep_identical_replicas(config_writer, tmp_path, two_gloo_processes):
    # each rank draws its own half of every batch (different data): without DDP's gradient
    # averaging the replicas would drift apart after the first step
    cfg = config_writer(tmp_path, "ddp", local={"device": "cpu", "num_threads": 1, "progress": False})
    proc = two_gloo_processes(cfg, tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "finished:" in proc.stdout and proc.stdout.count("finished:") == 1  # only rank 0 prints

    out = tmp_path / "ddp"
    hashes = {}
    for name in ("init_network.pt", "network.pt"):
        _, meta = load_network(out / name)
        summary = meta["training"]["summary"]
        assert summary["world_size"] == 2
        hashes[name] = summary["replicas"]["weight_hashes"]
        assert len(hashes[name]) == 2 and hashes[name][0] == hashes[name][1], (name, hashes[name])
        assert summary["samples_seen"] == summary["epochs"] * 4 * 64  # 4 batches of 64 (2 x 32) per epoch
    # the hashes are those of the last weights of the posterior network, which rank 0 wrote to
    # the checkpoint
    last = load_checkpoint(out / "checkpoint.pt")["job"]["state"]["state_dict"]
    assert state_hash(last) == hashes["network.pt"][0]
    assert all(torch.isfinite(v).all() for v in last.values())
    # rank 0 alone wrote the files: no leftovers of a second writer
    assert sorted(p.name for p in out.iterdir()) == [
        "checkpoint.pt", "config.yaml", "history.csv", "init_history.csv", "init_network.pt", "network.pt"]
