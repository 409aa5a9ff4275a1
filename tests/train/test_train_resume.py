"""Exact resume: a run stopped (between epochs, or mid-epoch by a signal) and resumed reaches
exactly the weights of an uninterrupted run with the same seed."""

import csv
import signal

import pytest
import torch

from dingo_gw.nn import load_network, model_from_dict
from dingo_gw.train import load_checkpoint, load_train_config, train, train_from_checkpoint
from dingo_gw.train import trainer as trainer_module

LOSS_COLUMNS = ("epoch", "stage", "lr", "train_loss", "val_loss")


def state(path):
    return torch.load(path, weights_only=True)["state_dict"]


def assert_same_weights(a: dict, b: dict):
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def losses(path):
    with open(path) as f:
        return [{k: row[k] for k in LOSS_COLUMNS} for row in csv.DictReader(f)]


@pytest.fixture(scope="module")
def straight_run(config_writer, tmp_path_factory):
    """An uninterrupted NPE + GNPE run of configs/train_tiny.yaml (init network: 1 epoch; posterior
    network: 2 stages of 1 epoch, the projection frozen in the first)."""
    cfg = load_train_config(config_writer(tmp_path_factory.mktemp("straight"), "straight"))
    result = train(cfg)
    assert result.outcome == "finished"
    return cfg, result


def test_stop_between_epochs_and_resume_gives_identical_weights(write_config, straight_run):
    _, ref = straight_run
    cfg = load_train_config(write_config("interrupted"))
    first = train(cfg, stop_after_epochs=2)  # the init network's epoch + the first posterior epoch
    assert first.outcome == "stopped"
    out = first.output_dir
    assert not (out / "network.pt").exists() and (out / "init_network.pt").exists()
    ckpt = load_checkpoint(out / "checkpoint.pt")
    assert ckpt["job"]["name"] == "main" and ckpt["job"]["state"]["epochs_done"] == 1
    assert "init" in ckpt["completed"]

    second = train_from_checkpoint(out / "checkpoint.pt")
    assert second.outcome == "finished"
    assert_same_weights(state(out / "network.pt"), state(ref.network))
    assert_same_weights(state(out / "init_network.pt"), state(ref.init_network))
    last = load_checkpoint(out / "checkpoint.pt")["job"]["state"]["state_dict"]
    assert_same_weights(last, load_checkpoint(ref.checkpoint)["job"]["state"]["state_dict"])
    assert losses(out / "history.csv") == losses(ref.output_dir / "history.csv")
    assert losses(out / "init_history.csv") == losses(ref.output_dir / "init_history.csv")
    assert len(losses(out / "history.csv")) == 2


def test_signal_mid_epoch_checkpoints_and_resume_gives_identical_weights(write_config, straight_run, monkeypatch):
    _, ref = straight_run
    cfg = load_train_config(write_config("signalled"))

    def interrupt(job, epoch, batch):
        if (job, epoch, batch) == ("main", 2, 1):
            signal.raise_signal(signal.SIGINT)  # as a Ctrl-C / Slurm's SIGTERM would

    monkeypatch.setattr(trainer_module, "_after_batch", interrupt)
    with pytest.raises(KeyboardInterrupt):
        train(cfg)
    monkeypatch.setattr(trainer_module, "_after_batch", None)
    out = cfg.output_dir
    ckpt = load_checkpoint(f"{out}/checkpoint.pt")
    s = ckpt["job"]["state"]
    assert (s["epochs_done"], s["batches_done"], s["stage"]) == (1, 2, 1)  # 2 batches into epoch 2

    result = train(cfg, resume=True)
    assert result.outcome == "finished"
    assert_same_weights(state(result.network), state(ref.network))
    assert losses(result.output_dir / "history.csv") == losses(ref.output_dir / "history.csv")
    # the network file embeds the init network, identical to init_network.pt
    _, meta = load_network(result.network)
    assert_same_weights(model_from_dict(meta["init_network"]).state_dict(), state(result.init_network))


def test_different_seed_gives_different_weights(write_config, straight_run):
    """The comparisons above can fail: another seed changes the weights."""
    _, ref = straight_run
    cfg = load_train_config(write_config("other_seed", seed=2))
    result = train(cfg)
    a, b = state(result.network), state(ref.network)
    assert any(not torch.equal(a[k], b[k]) for k in a)


def test_fmpe_resume_without_gnpe_is_exact(write_config):
    """FMPE draws its training times and base samples from torch's global RNG: seeded per batch."""
    model = {"type": "fmpe", "gnpe": None, "field": {"hidden_dims": [32, 32], "time_features": 2}}
    ref = train(load_train_config(write_config("fmpe_ref", model=model)))
    assert ref.init_network is None and ref.outcome == "finished"
    cfg = load_train_config(write_config("fmpe_cut", model=model))
    assert train(cfg, stop_after_epochs=1).outcome == "stopped"
    result = train(cfg, resume=True)
    assert_same_weights(state(result.network), state(ref.network))
    _, meta = load_network(result.network)
    assert meta["gnpe"] is None and "init_network" not in meta


def test_wall_time_limit_writes_network_and_resume_with_more_time_is_exact(write_config, monkeypatch):
    """max_wall_time stops mid-epoch with the network written (best epoch so far); raising the limit
    and resuming ends with the weights of an unlimited run. A fake clock makes every batch last
    60 s, so the 0.1 h limit falls after the 6th batch (epoch 1 = batches 1-4)."""
    ref = train(load_train_config(write_config("unlimited", model={"gnpe": None})))
    monkeypatch.setattr(trainer_module.Trainer, "wall_time", property(lambda self: 60.0 * self.samples_seen / 64))
    cfg = load_train_config(write_config("limited", model={"gnpe": None}, training={"max_wall_time": 0.1}))
    first = train(cfg)
    assert first.outcome == "wall_time" and first.network.exists()
    _, meta = load_network(first.network)
    summary = meta["training"]["summary"]
    assert (summary["stop_reason"], summary["epochs"], summary["best_epoch"]) == ("wall_time", 1, 1)
    s = load_checkpoint(first.checkpoint)["job"]["state"]
    assert (s["epochs_done"], s["batches_done"]) == (1, 3)

    relaxed = load_train_config(write_config("limited", model={"gnpe": None}, training={"max_wall_time": None}))
    second = train(relaxed, resume=True)
    assert second.outcome == "finished"
    assert_same_weights(state(second.network), state(ref.network))


def test_prefetch_thread_gives_identical_weights(write_config, straight_run):
    """local.workers = 1 makes the next batch in a background thread: same batches, same weights."""
    _, ref = straight_run
    result = train(load_train_config(write_config("prefetch", local={"workers": 1})))
    assert_same_weights(state(result.network), state(ref.network))
    assert_same_weights(state(result.init_network), state(ref.init_network))


def test_appended_stage_extends_a_finished_run_exactly(write_config, straight_run):
    """A finished run resumed with a config that appends a stage trains that stage and reaches
    exactly the weights of a run that had the longer schedule from the start."""
    import yaml

    cfg0, ref = straight_run
    base = yaml.safe_load(open(ref.output_dir / "config.yaml"))
    extra = dict(base["training"]["stages"][-1], epochs=1)
    extra["optimizer"] = dict(extra["optimizer"], lr=extra["optimizer"]["lr"] * 0.5)
    stages = base["training"]["stages"] + [extra]

    short = train(load_train_config(write_config("short")))
    assert short.outcome == "finished"
    extended_cfg = load_train_config(write_config("short", training={"stages": stages}))
    extended = train(extended_cfg, resume=True)
    assert extended.outcome == "finished"
    history = losses(extended.output_dir / "history.csv")
    assert len(history) == len(losses(ref.output_dir / "history.csv")) + 1
    assert history[-1]["stage"] == str(len(stages))

    longer = train(load_train_config(write_config("longer", training={"stages": stages})))
    assert_same_weights(state(extended.network), state(longer.network))
    assert losses(longer.output_dir / "history.csv") == history
    # the stored schedule is now the extended one: a plain resume has nothing left to do
    assert train(extended_cfg, resume=True).outcome == "already_finished"


def test_changed_stage_is_refused_on_resume(write_config, straight_run):
    from dingo_gw.errors import ConfigError

    _, ref = straight_run
    import yaml

    stages = yaml.safe_load(open(ref.output_dir / "config.yaml"))["training"]["stages"]
    train(load_train_config(write_config("changed")))
    stages[0] = dict(stages[0], epochs=stages[0]["epochs"] + 1)
    with pytest.raises(ConfigError, match="training.stages"):
        train(load_train_config(write_config("changed", training={"stages": stages})), resume=True)


def _same_tree(a, b) -> bool:
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same_tree(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(_same_tree(x, y) for x, y in zip(a, b))
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and torch.equal(a, b)
    return a == b


def test_export_writes_the_network_the_run_writes(straight_run, tmp_path):
    """dingo_train --export CHECKPOINT --out FILE: the best weights and the same metadata as the run's
    network.pt (the bank only opened from disk); "last" gives the checkpoint's current weights."""
    from dingo_gw.cli.train import main

    _, ref = straight_run
    out = tmp_path / "exported.pt"
    with pytest.raises(SystemExit) as e:
        main(["--export", str(ref.checkpoint), "--out", str(out)])
    assert e.value.code == 0
    a, b = torch.load(out, weights_only=True), torch.load(ref.network, weights_only=True)
    assert_same_weights(a["state_dict"], b["state_dict"])
    exported = a["metadata"]["training"].pop("exported")
    assert exported["epochs_done"] == 2 and exported["weights"].startswith("best")
    a["metadata"]["training"]["summary"].pop("replicas"), b["metadata"]["training"]["summary"].pop("replicas")
    for key in ("wall_time_s",):
        a["metadata"]["training"]["summary"].pop(key, None), b["metadata"]["training"]["summary"].pop(key, None)
    assert _same_tree(a["metadata"], b["metadata"])
    last = tmp_path / "last.pt"
    with pytest.raises(SystemExit) as e:
        main(["--export", str(ref.checkpoint), "--out", str(last), "--weights", "last"])
    assert e.value.code == 0
    assert_same_weights(torch.load(last, weights_only=True)["state_dict"],
                        load_checkpoint(ref.checkpoint)["job"]["state"]["state_dict"])
    model_from_dict(torch.load(last, weights_only=True))  # a loadable network file
