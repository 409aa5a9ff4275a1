"""Training from a bank that stays on disk (data.bank_in_memory: false): rows read from the HDF5
file equal the in-memory bank's for the same indices (SVD and uncompressed banks), so training
batches are identical; epochs visit every training row once in a chunk-aligned order; and a
2-process gloo DDP run trains from the on-disk bank."""


import numpy as np
import pytest
import torch

from dingo_gw.errors import ConfigError
from dingo_gw.nn import load_network
from dingo_gw.pipeline import PolarizationSource
from dingo_gw.train import seeds
from dingo_gw.train.config import load_train_config
from dingo_gw.train.data import DiskPolarizationSource, chunk_window_order, load_training_data
from dingo_gw.waveforms import BankConfig, generate_bank, load_bank


@pytest.fixture(scope="module")
def uncompressed_bank(tmp_path_factory):
    path = tmp_path_factory.mktemp("ondisk") / "bank.h5"
    cfg = BankConfig.model_validate({
        "domain": {"f_min": 20.0, "f_max": 1024.0, "delta_f": 0.25},  # 32 rows per HDF5 chunk
        "waveform": {"approximant": "IMRPhenomD", "f_ref": 20.0},
        "prior": {"chirp_mass": "bilby.gw.prior.UniformInComponentsChirpMass(minimum=20.0, maximum=40.0)",
                  "mass_ratio": 0.7, "theta_jn": 0.3, "phase": 0.0},
        "num_samples": 200, "seed": 3, "chunk_size": 50})
    generate_bank(cfg, path, progress=False)
    return path


@pytest.mark.parametrize("which", ["svd", "uncompressed"])
def test_rows_from_disk_equal_the_in_memory_bank(which, tiny_files, uncompressed_bank):
    bank = load_bank(tiny_files[0] if which == "svd" else uncompressed_bank)
    assert bank.compressed == (which == "svd")
    memory = PolarizationSource.from_bank(bank)
    disk = DiskPolarizationSource(bank, cache_chunks=2)
    assert len(disk) == len(memory) and disk.n_band == memory.n_band
    rng = np.random.default_rng(1)
    for _ in range(3):  # unsorted, repeated indices across chunks
        idx = torch.as_tensor(rng.integers(0, len(bank), 97))
        a, b = memory.get_stacked(idx), disk.get_stacked(idx)
        assert a.dtype == b.dtype == torch.complex64 and a.shape == b.shape
        assert torch.equal(a, b)
    # the rows are the bank's waveforms on the band f >= f_min (decompressed by the bank reader:
    # numpy instead of torch, equal to float32 rounding)
    k = bank.domain.min_index
    idx = torch.tensor([5, 0, len(bank) - 1])
    for got, ref in zip(disk.get(idx), (bank.h_plus[idx.numpy(), k:], bank.h_cross[idx.numpy(), k:])):
        if which == "uncompressed":
            assert np.array_equal(got.numpy(), ref)
        else:
            np.testing.assert_allclose(got.numpy(), ref, rtol=0, atol=1e-5 * np.abs(ref).max())
    disk.close()


def test_reads_are_whole_cached_chunks(uncompressed_bank):
    bank = load_bank(uncompressed_bank)
    disk = DiskPolarizationSource(bank, cache_chunks=2)
    rows = disk.chunk_rows
    assert 1 <= rows < len(bank)
    disk.get_stacked(torch.arange(0, rows))  # one chunk
    assert disk.chunk_reads == 1
    disk.get_stacked(torch.tensor([rows - 1, 0, 1]))  # cached
    assert disk.chunk_reads == 1
    disk.get_stacked(torch.tensor([rows, 2 * rows]))  # two more chunks; chunk 0 leaves the cache
    assert disk.chunk_reads == 3
    disk.get_stacked(torch.tensor([0]))
    assert disk.chunk_reads == 4


def test_chunk_window_order_is_a_permutation_of_few_chunks_at_a_time():
    indices = torch.arange(0, 1000)[torch.arange(1000) % 7 != 3]  # a training split with holes
    g = seeds.generator(5)
    order = chunk_window_order(indices, 40, 3, g)
    assert torch.equal(order.sort().values, indices)
    again = chunk_window_order(indices, 40, 3, seeds.generator(5))
    other = chunk_window_order(indices, 40, 3, seeds.generator(6))
    assert torch.equal(order, again) and not torch.equal(order, other)
    # consecutive rows come from one window of <= 3 chunks; windows follow each other
    chunk = (order // 40).numpy()
    windows = []
    for c in chunk:
        if not windows or (c not in windows[-1] and len(windows[-1]) == 3):
            windows.append({c})
        else:
            windows[-1].add(c)
    assert all(len(w) <= 3 for w in windows) and sum(len(w) for w in windows) == 25  # each chunk in one window
    assert not np.array_equal(chunk, np.sort(chunk))  # the chunk order is shuffled


def test_training_batches_from_disk_equal_the_in_memory_ones(write_config):
    memory = load_training_data(load_train_config(write_config("mem")), torch.device("cpu"))
    disk = load_training_data(load_train_config(write_config("disk", data={"bank_in_memory": False})),
                              torch.device("cpu"))
    assert isinstance(disk.polarizations, DiskPolarizationSource)
    assert torch.equal(memory.train_indices, disk.train_indices)
    asd = memory.config.data.asd_datasets
    pm, pd = memory.pipeline("main", asd), disk.pipeline("main", asd)
    order = disk.epoch_order("main", 1)
    assert torch.equal(order.sort().values, disk.train_indices)
    idx = order[:64]
    a, b = pm.batch(idx, seeds.generator(11)), pd.batch(idx, seeds.generator(11))
    for name in ("theta", "data", "proxies"):
        assert torch.equal(getattr(a, name), getattr(b, name)), name
    assert torch.isfinite(a.data).all() and a.data[:, :, :2].std() > 0.5  # whitened noise + signal


def test_on_disk_and_decompressed_contradict(write_config):
    with pytest.raises(ConfigError, match="contradicts bank_in_memory: false"):
        load_train_config(write_config("bad", data={"bank_in_memory": False, "decompress_bank": True}))


def test_two_gloo_processes_train_from_the_bank_on_disk(config_writer, tmp_path, two_gloo_processes):
    cfg = config_writer(tmp_path, "ddp_disk", data={"bank_in_memory": False, "disk_shuffle_window": 2},
                        local={"device": "cpu", "num_threads": 1, "progress": False})
    proc = two_gloo_processes(cfg, tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    _, meta = load_network(tmp_path / "ddp_disk" / "network.pt")
    summary = meta["training"]["summary"]
    hashes = summary["replicas"]["weight_hashes"]
    assert summary["world_size"] == 2 and len(hashes) == 2 and hashes[0] == hashes[1]
    assert meta["training"]["config"]["data"]["bank_in_memory"] is False
    assert all(np.isfinite(h["train_loss"]) for h in summary["history"])
