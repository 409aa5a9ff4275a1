"""ASD datasets: building from a config, HDF5 round trip, sampling, combining, bad input, CLI."""

import hashlib
import shutil

import h5py
import numpy as np
import pytest

from dingo_gw.cli.generate_asd_dataset import main as generate_main
from dingo_gw.domain import FrequencyDomain
from dingo_gw.errors import DataError, DomainMismatchError, FileFormatError
from dingo_gw.events import get_event
from dingo_gw.io.strain import read_strain
from dingo_gw.noise.asd_dataset import ASDDataset, combine_asd_datasets, load_asd_dataset, save_asd_dataset
from dingo_gw.noise.psd import estimate_psd, read_psd_file


@pytest.fixture(scope="module")
def tiny(tmp_path_factory, project_root):
    out = tmp_path_factory.mktemp("asd") / "sub" / "tiny.h5"  # parent folder does not exist yet
    with pytest.raises(SystemExit) as e:
        generate_main(["--config", str(project_root / "configs" / "asd_dataset_tiny.yaml"), "--out", str(out), "--quiet"])
    assert e.value.code == 0
    return out


def test_tiny_dataset_content(tiny, data_dir):
    ds = load_asd_dataset(tiny)
    d = FrequencyDomain(20.0, 512.0, 0.25)
    ds.check_domain(d)
    assert ds.detectors == ["H1", "L1"] and ds.num_asds("H1") == 2 and ds.num_asds("L1") == 1
    ev = get_event("GW150914")
    # the stored ASD is the Welch estimate of the event's strain with the event window excluded
    h1 = estimate_psd(read_strain(data_dir / "H-H1_LOSC_4_V2-1126259446-32.hdf5"), d, (ev.gps - 6, ev.gps + 2))
    assert np.allclose(ds.asds["H1"][0], np.sqrt(h1), rtol=1e-12)
    assert np.allclose(ds.asds["H1"][1], np.sqrt(read_psd_file(data_dir / "psd/lfi-gw_GW150914/PSD_H1.txt", d)))
    assert np.all(ds.asds["H1"][:, : d.min_index] == 1.0)
    assert list(ds.gps_times["H1"]) == [ev.gps, ev.gps]
    assert list(ds.welch_segments["H1"]) == [5, 128] and list(ds.segment_durations["H1"]) == [4.0, 8.0]
    assert ds.sources["H1"][0] == "H-H1_LOSC_4_V2-1126259446-32.hdf5 (GW150914)"
    assert ds.settings["domain"] == {"f_min": 20.0, "f_max": 512.0, "delta_f": 0.25}
    sha = hashlib.sha256((data_dir / "L-L1_LOSC_4_V2-1126259446-32.hdf5").read_bytes()).hexdigest()
    assert ds.metadata["inputs_sha256"]["L-L1_LOSC_4_V2-1126259446-32.hdf5"] == sha
    assert ds.metadata["reports"]["L1"][0]["num_segments"] == 5


def test_roundtrip_sampling_and_combining(tiny, tmp_path):
    import torch

    ds = load_asd_dataset(tiny)
    again = load_asd_dataset(save_asd_dataset(ds, tmp_path / "copy.h5"))
    for det in ds.detectors:
        assert np.array_equal(again.asds[det], ds.asds[det]) and again.sources[det] == ds.sources[det]
    a = ds.sample(np.random.default_rng(1), 50)
    b = ds.sample(1, 50)
    assert all(np.array_equal(a[d], b[d]) for d in ds.detectors)
    t = ds.sample(torch.Generator().manual_seed(0), 7, ["H1"])
    assert t["H1"].shape == (7, len(ds.domain))
    assert all(any(np.array_equal(row, x) for x in ds.asds["H1"]) for row in a["H1"])
    both = combine_asd_datasets([ds, ds.subset(["H1"])])
    assert both.num_asds("H1") == 4 and both.num_asds("L1") == 1
    other = ASDDataset(FrequencyDomain(20.0, 512.0, 0.5), {"H1": np.ones((1, 1025))}, {}, {})
    with pytest.raises(DomainMismatchError, match="delta_f = 0.5 Hz, expected 0.25 Hz"):
        combine_asd_datasets([ds, other])
    with pytest.raises(DomainMismatchError):
        ds.check_domain(FrequencyDomain(20.0, 256.0, 0.25))
    with pytest.raises(DataError, match="has no ASDs for V1"):
        ds.sample(0, 3, ["V1"])


def test_bad_datasets_are_refused(tiny, tmp_path):
    d = FrequencyDomain(20.0, 256.0, 0.5)
    ok = np.ones((2, len(d)))
    with pytest.raises(DataError, match="non-positive or non-finite"):
        ASDDataset(d, {"H1": np.where(np.arange(len(d)) == 100, np.nan, ok)}, {}, {})
    with pytest.raises(DataError, match=r"shape \(2, 10\); expected \(N >= 1, 513\)"):
        ASDDataset(d, {"H1": np.ones((2, 10))}, {}, {})
    with pytest.raises(DataError, match="unknown detector 'X1'"):
        ASDDataset(d, {"X1": ok}, {}, {})
    trunc = tmp_path / "trunc.h5"
    trunc.write_bytes(tiny.read_bytes()[:4000])
    with pytest.raises(FileFormatError, match="not a valid HDF5 file or truncated"):
        load_asd_dataset(trunc)
    damaged = tmp_path / "damaged.h5"
    shutil.copy(tiny, damaged)
    with h5py.File(damaged, "r+") as f:
        del f["L1/gps_times"]
    with pytest.raises(FileFormatError, match="L1/gps_times is missing"):
        load_asd_dataset(damaged)
    with h5py.File(damaged, "r+") as f:
        f.attrs["dingo_gw_kind"] = "waveform_bank"
    with pytest.raises(FileFormatError, match="is not a dingo_gw asd_dataset file"):
        load_asd_dataset(damaged)


def _run(capsys, argv):
    with pytest.raises(SystemExit) as e:
        generate_main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    return e.value.code, [l for l in err if l.startswith("error:")], err


def test_cli_errors_are_one_line_and_leave_nothing(tmp_path, capsys, project_root):
    out = tmp_path / "out.h5"
    cfg = tmp_path / "c.yaml"
    cases = {
        "domain: {f_min: 20, f_max: 256, delta_f: 0.5}\nstrain: [{file: H-H1_LOSC_4_V2-1126259446-32.hdf5}]\nsegment: 2\n":
            "segment: unknown key",
        "domain: {f_min: 20, f_max: 256, delta_f: 0.5}\nstrain: [{file: nowhere.hdf5}]\n": "nowhere.hdf5 not found",
        "domain: {f_min: 20, f_max: 256, delta_f: 0.5}\nstrain: [{event: GW150914, detectors: [V1]}]\n":
            "observed by H1, L1, not V1",
        "domain: {f_min: 20, f_max: 256, delta_f: 0.5}\nstrain: [{event: GW150914}]\npsd_estimation: {segment_duration: 8}\n":
            "too little data for a PSD",
        "domain: {f_min: 20, f_max: 4096, delta_f: 0.5}\nstrain: [{event: GW150914}]\n": "below 2 f_max",
        "domain: {f_min: 20, f_max: 256, delta_f: 0.5}\nstrain: [{event: GW150914, detectors: [H2]}]\n":
            "unknown detector 'H2'",
    }
    for text, message in cases.items():
        cfg.write_text(text)
        code, errors, err = _run(capsys, ["--config", str(cfg), "--out", str(out), "--quiet"])
        assert code == 2 and len(errors) == 1 and message in errors[0], (message, err)
        assert not out.exists() and not any(p.name.endswith(".tmp") for p in tmp_path.iterdir())
    code, errors, _ = _run(capsys, ["--config", str(tmp_path / "missing.yaml"), "--out", str(out)])
    assert code == 2 and errors == [f"error: config file not found: {tmp_path / 'missing.yaml'}"]
