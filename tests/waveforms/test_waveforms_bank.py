"""Bank generation: reproducibility, workers, resume after a kill, shards + merge, failures,
bad input, and the console scripts."""

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
import yaml

from dingo_gw.errors import ConfigError, DataError, FileFormatError
from dingo_gw.io.atomic import temporary_path
from dingo_gw.io.hdf5 import stamp
from dingo_gw.priors import build_prior, sample_prior
from dingo_gw.waveforms import BankConfig, compress_bank, generate_bank, load_bank, merge_banks
from dingo_gw.waveforms import bank as bank_module
from dingo_gw.waveforms.config import CompressionSettings, SVDSettings

BASE = {
    "domain": {"f_min": 20.0, "f_max": 256.0, "delta_f": 0.25},
    "waveform": {"approximant": "IMRPhenomPv2", "f_ref": 20.0},
    "num_samples": 30,
    "seed": 5,
    "chunk_size": 8,
}


def make_config(**overrides) -> BankConfig:
    return BankConfig.model_validate({**BASE, **overrides})


def write_yaml(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data))
    return path


def assert_same_bank(path_a, path_b):
    a, b = load_bank(path_a), load_bank(path_b)
    assert a.metadata == b.metadata
    assert sorted(a.parameters) == sorted(b.parameters)
    for key in a.parameters:
        assert np.array_equal(a.parameters[key], b.parameters[key]), key
    assert np.array_equal(a.sample_index, b.sample_index)
    assert np.array_equal(a.h_plus, b.h_plus) and np.array_equal(a.h_cross, b.h_cross)


class Interrupted(Exception):
    pass


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The uninterrupted, unsharded bank of BASE (workers = 1)."""
    path = tmp_path_factory.mktemp("ref") / "ref.h5"
    generate_bank(make_config(), path, progress=False)
    return path


def test_bank_contents(reference):
    bank = load_bank(reference)
    assert len(bank) == 30 and not bank.compressed
    expected = {"chirp_mass", "mass_ratio", "mass_1", "mass_2", "a_1", "a_2", "tilt_1", "tilt_2", "phi_12",
                "phi_jl", "theta_jn", "phase", "luminosity_distance", "geocent_time"}
    assert set(bank.parameters) == expected
    assert all(v.dtype == np.float64 and v.shape == (30,) for v in bank.parameters.values())
    # the parameters are the seed's draw from the prior (bilby), in order
    draw = sample_prior(build_prior(None), 30, seed=5)
    for key, value in draw.items():
        assert np.array_equal(bank.parameters[key], value)
    m1, m2 = bank.parameters["mass_1"], bank.parameters["mass_2"]
    assert np.allclose((m1 * m2) ** 0.6 / (m1 + m2) ** 0.2, bank.parameters["chirp_mass"], rtol=1e-12)
    md = bank.metadata
    assert md["config"]["num_samples"] == 30 and md["seed"] == 5 and md["shard"] is None
    assert md["versions"]["lalsimulation"] and md["failed"]["count"] == 0 and md["svd"] is None
    assert set(md["config"]["prior"]) >= {"chirp_mass", "mass_ratio", "a_1", "phase"}
    chunk = bank.read_chunk(10, 14)
    assert np.array_equal(chunk["h_plus"], bank.h_plus[10:14])
    with h5py.File(reference) as f:
        assert f["waveforms/h_plus"].dtype == np.complex64 and f["waveforms/h_plus"].chunks is not None


def test_same_seed_same_bank_for_any_workers(reference, tmp_path):
    generate_bank(make_config(), tmp_path / "w2.h5", workers=2, progress=False)
    assert_same_bank(reference, tmp_path / "w2.h5")
    generate_bank(make_config(seed=6), tmp_path / "s6.h5", progress=False)
    assert not np.array_equal(load_bank(tmp_path / "s6.h5").parameters["chirp_mass"],
                              load_bank(reference).parameters["chirp_mass"])


def test_resume_after_interruption_is_identical(reference, tmp_path, monkeypatch):
    out = tmp_path / "bank.h5"

    def interrupt(k):
        if k == 1:
            raise Interrupted

    monkeypatch.setattr(bank_module, "_after_chunk", interrupt)
    with pytest.raises(Interrupted):
        generate_bank(make_config(), out, progress=False)
    assert not out.exists() and temporary_path(out).exists()

    with pytest.raises(ConfigError, match="cannot resume.*different settings"):
        generate_bank(make_config(seed=9), out, resume=True, progress=False)

    done = []
    monkeypatch.setattr(bank_module, "_after_chunk", done.append)
    generate_bank(make_config(), out, workers=2, resume=True, progress=False)
    assert done == [2, 3]  # chunks 0 and 1 were kept, not regenerated
    assert not temporary_path(out).exists()
    assert_same_bank(reference, out)


def test_late_svd_error_keeps_waveforms_for_resume(tmp_path, monkeypatch):
    out = tmp_path / "bank.h5"
    bad = make_config()  # as a library caller might build it, bypassing validation:
    bad.compression = CompressionSettings(svd=SVDSettings(size=4, num_training_samples=40))
    with pytest.raises(ConfigError, match=r"num_training_samples = 40 must be smaller .*rerun with --resume"):
        generate_bank(bad, out, progress=False)
    assert not out.exists() and temporary_path(out).exists()
    done = []
    monkeypatch.setattr(bank_module, "_after_chunk", done.append)
    good = make_config(compression={"svd": {"size": 4, "num_training_samples": 20}})
    generate_bank(good, out, resume=True, progress=False)
    assert done == [] and load_bank(out).compressed  # nothing regenerated
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bank.h5"]


def test_resume_after_sigkill_is_identical(reference, tmp_path):
    cfg = write_yaml(tmp_path / "bank.yaml", BASE)
    out = tmp_path / "bank.h5"
    script = (
        "import os, signal, sys\n"
        "from dingo_gw.waveforms import bank\n"
        "bank._after_chunk = lambda k: os.kill(os.getpid(), signal.SIGKILL) if k == 2 else None\n"
        "from dingo_gw.cli.generate_dataset import main\n"
        "main(sys.argv[1:])\n"
    )
    proc = subprocess.run([sys.executable, "-c", script, "--config", str(cfg), "--out", str(out), "--no-progress"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert not out.exists()
    with h5py.File(temporary_path(out)) as f:
        assert f["progress/chunk_done"][()].tolist() == [1, 1, 1, 0]
    from dingo_gw.cli.generate_dataset import main

    with pytest.raises(SystemExit) as exit_:
        main(["--config", str(cfg), "--out", str(out), "--resume", "--no-progress"])
    assert exit_.value.code == 0
    assert_same_bank(reference, out)


def test_shards_merge_to_the_unsharded_bank(reference, tmp_path):
    shards = []
    for i in (1, 2, 3):
        path = tmp_path / f"shard{i}.h5"
        generate_bank(make_config(), path, shard=(i, 3), progress=False)
        shards.append(path)
    assert [len(load_bank(p)) for p in shards] == [10, 10, 10]
    merged = tmp_path / "merged.h5"
    merge_banks([shards[2], shards[0], shards[1]], merged, progress=False)
    assert_same_bank(reference, merged)

    # SVD built once after merging equals the SVD of the unsharded bank
    settings = SVDSettings(size=10, num_training_samples=20, num_validation_samples=10)
    unsharded = tmp_path / "unsharded.h5"
    unsharded.write_bytes(Path(reference).read_bytes())
    compress_bank(merged, settings, progress=False)
    compress_bank(unsharded, settings, progress=False)
    a, b = load_bank(merged), load_bank(unsharded)
    assert a.compressed and np.array_equal(a.coefficients("h_plus"), b.coefficients("h_plus"))
    assert a.metadata == b.metadata


def test_merge_refuses_incomplete_or_foreign_shards(reference, tmp_path):
    paths = {}
    for i in (1, 2):
        paths[i] = tmp_path / f"s{i}.h5"
        generate_bank(make_config(num_samples=10), paths[i], shard=(i, 2), progress=False)
    other = tmp_path / "other.h5"
    generate_bank(make_config(num_samples=10, seed=99), other, shard=(2, 2), progress=False)
    out = tmp_path / "m.h5"
    with pytest.raises(DataError, match=r"missing shard\(s\) 2/2"):
        merge_banks([paths[1]], out)
    with pytest.raises(DataError, match="given twice"):
        merge_banks([paths[1], paths[1], paths[2]], out)
    with pytest.raises(DataError, match="not shards of one bank: their config differs"):
        merge_banks([paths[1], other], out)
    with pytest.raises(DataError, match="not a shard"):
        merge_banks([paths[1], reference], out)
    assert not out.exists() and not temporary_path(out).exists()


def test_failed_waveforms_are_reported_and_excluded(tmp_path, caplog):
    prior = {"chirp_mass": 30.0, "mass_ratio": 0.8, "a_1": "Uniform(minimum=0.0, maximum=1.3)",
             "tilt_1": 1.0, "theta_jn": 0.5, "phase": 0.0}
    cfg = make_config(prior=prior, num_samples=24,
                      compression={"svd": {"size": 4, "num_training_samples": 8, "num_validation_samples": 4}})
    summary = generate_bank(cfg, tmp_path / "b.h5", progress=False)
    draw = sample_prior(build_prior(prior), 24, seed=5)["a_1"]
    bad = draw > 1
    assert 0 < bad.sum() < 24
    bank = load_bank(tmp_path / "b.h5")
    assert len(bank) == summary.num_waveforms == (~bad).sum()
    assert np.array_equal(bank.sample_index, np.flatnonzero(~bad))
    assert np.array_equal(bank.parameters["a_1"], draw[~bad])
    failed = bank.metadata["failed"]
    assert failed["count"] == bad.sum() and failed["first_index"] == np.flatnonzero(bad)[0]
    assert failed["first_parameters"]["a_1"] == draw[bad][0] and "between 0 and 1" in failed["first_error"]
    assert f"failed on {bad.sum()} of 24" in caplog.text
    assert np.all(np.abs(bank.h_plus).max(axis=1) > 0)  # no zero rows slipped through
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.h5"]


def test_all_failed_is_an_error(tmp_path):
    prior = {"chirp_mass": 30.0, "mass_ratio": 0.8, "a_1": 1.5, "tilt_1": 1.0, "theta_jn": 0.5, "phase": 0.0}
    with pytest.raises(DataError, match="no waveform could be generated"):
        generate_bank(make_config(prior=prior, num_samples=4), tmp_path / "b.h5", progress=False)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("overrides, message", [
    ({"waveform": {"approximant": "IMRPhenomFoo", "f_ref": 20.0}},
     r"waveform\.approximant: unknown or not frequency-domain approximant 'IMRPhenomFoo'; available: .*IMRPhenomXPHM"),
    ({"prior": {"chirp_mass": "Uniform(minimum=10, maximum=oops)"}}, r"prior\.chirp_mass: invalid bilby prior"),
    ({"prior": {"chirp_mass": "Unifrom(10, 20)"}}, r"prior\.chirp_mass: invalid bilby prior"),
    ({"domain": {"f_min": 20.0, "f_max": 256.1, "delta_f": 0.25}}, r"f_max=256\.1 Hz is not a multiple of delta_f"),
    ({"domain": {"f_min": 0.0, "f_max": 256.0, "delta_f": 0.25}}, r"domain: f_min must be > 0 Hz"),
    ({"waveform": {"approximant": "IMRPhenomPv2", "f_ref": 20.0, "f_start": 25.0}},
     r"waveform: f_start = 25\.0 Hz is above domain\.f_min = 20\.0 Hz"),
    ({"waveform": {"approximant": "IMRPhenomPv2", "f_ref": 300.0}}, r"waveform: f_ref = 300\.0 Hz is above domain\.f_max"),
    ({"domain": {"f_min": 20.0, "f_max": 256.0, "delta_f": 1.0}},
     r"delta_f = 1\.0 Hz gives segments of T = 1/delta_f = 1 s, but waveforms from f_start = 20\.0 Hz last up to"),
    ({"waveform": {"approximant": "IMRPhenomD", "f_ref": 20.0}}, r"IMRPhenomD is an aligned-spin approximant"),
    ({"prior": {"chirp_mass": 30.0, "mass_ratio": 0.5, "theta_jn": 1.0, "phase": 0.0,
                "ra": "Uniform(0, 6.28)"}}, r"prior: ra are extrinsic"),
    ({"prior": {"chirp_mass": 30.0, "mass_ratio": 0.5, "phase": 0.0}}, r"prior: .*'theta_jn' is missing"),
    ({"compression": {"svd": {"size": 5, "num_training_samples": 30}}}, r"compression: svd.num_training_samples = 30 must be smaller than num_samples = 30"),
    ({"compression": {"svd": {"size": 5, "num_training_samples": 10, "whiten": "LIGOFoo"}}},
     r"compression\.svd\.whiten: unknown design PSD 'LIGOFoo'"),
])
def test_bad_config_is_one_clear_error_and_leaves_no_file(tmp_path, overrides, message):
    cfg_path = write_yaml(tmp_path / "bank.yaml", {**BASE, **overrides})
    out = tmp_path / "bank.h5"
    with pytest.raises(ConfigError, match=message) as err:
        generate_bank(BankConfig.load(cfg_path), out, progress=False)
    assert "\n" not in str(err.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bank.yaml"]


def test_prior_file_relative_to_config(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "bbh.prior").write_text(
        "chirp_mass = 30.0\nmass_ratio = 0.5\ntheta_jn = 1.0\nphase = Uniform(minimum=0, maximum=6.28)\n")
    cfg_path = write_yaml(tmp_path / "sub" / "bank.yaml", {**BASE, "prior": "bbh.prior", "num_samples": 3})
    generate_bank(BankConfig.load(cfg_path), tmp_path / "b.h5", progress=False)
    bank = load_bank(tmp_path / "b.h5")
    assert np.all(bank.parameters["chirp_mass"] == 30.0) and np.ptp(bank.parameters["phase"]) > 0
    assert bank.metadata["config"]["prior"]["chirp_mass"].startswith("DeltaFunction(peak=30.0")


def test_load_bank_rejects_bad_files(reference, tmp_path):
    with pytest.raises(FileFormatError, match="not found"):
        load_bank(tmp_path / "missing.h5")
    junk = tmp_path / "junk.h5"
    junk.write_bytes(os.urandom(5000))
    with pytest.raises(FileFormatError, match="not a valid HDF5 file"):
        load_bank(junk)
    truncated = tmp_path / "truncated.h5"
    data = Path(reference).read_bytes()
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(FileFormatError):
        load_bank(truncated)
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        stamp(f, "asd_dataset")
    with pytest.raises(FileFormatError, match="not a dingo_gw waveform_bank file"):
        load_bank(other)
    gutted = tmp_path / "gutted.h5"
    gutted.write_bytes(data)
    with h5py.File(gutted, "r+") as f:
        del f["waveforms/h_cross"]
    with pytest.raises(FileFormatError, match="not a complete waveform bank"):
        load_bank(gutted)


def test_unfinished_generation_file_is_not_a_bank(tmp_path, monkeypatch):
    out = tmp_path / "b.h5"
    monkeypatch.setattr(bank_module, "_after_chunk", lambda k: (_ for _ in ()).throw(Interrupted()))
    with pytest.raises(Interrupted):
        generate_bank(make_config(), out, progress=False)
    with pytest.raises(FileFormatError, match="unfinished bank"):
        load_bank(temporary_path(out))
    from dingo_gw.cli.ls import describe

    assert any("UNFINISHED generation run: 1 of 4 chunks done" in line for line in describe(str(temporary_path(out))))


# --- console scripts ----------------------------------------------------------------------

def test_cli_generate_ls_build_svd(tmp_path, capsys):
    from dingo_gw.cli import build_svd, generate_dataset, ls

    cfg = write_yaml(tmp_path / "bank.yaml", BASE)
    out = tmp_path / "new" / "folder" / "bank.h5"  # missing folders are created
    with pytest.raises(SystemExit) as e:
        generate_dataset.main(["--config", str(cfg), "--out", str(out), "--num-samples", "20", "--seed", "7",
                               "--workers", "2", "--no-progress"])
    assert e.value.code == 0
    bank = load_bank(out)
    assert len(bank) == 20 and bank.metadata["seed"] == 7 and bank.metadata["config"]["num_samples"] == 20
    with pytest.raises(SystemExit) as e:
        build_svd.main(["--bank", str(out), "--size", "8", "--num-training-samples", "15", "--no-progress"])
    assert e.value.code == 0
    assert load_bank(out).compressed and sorted(p.name for p in out.parent.iterdir()) == ["bank.h5"]
    capsys.readouterr()
    with pytest.raises(SystemExit) as e:
        ls.main([str(out)])
    text = capsys.readouterr().out
    assert e.value.code == 0
    for expected in ("waveform_bank", "waveforms            20", "IMRPhenomPv2", "20.0-256.0 Hz, delta_f = 0.25 Hz",
                     "prior.chirp_mass", "SVD, 8 basis vectors", "p99", "lalsimulation", "coefficients/h_plus  (20, 8)"):
        assert expected in text, expected


def test_cli_errors_are_one_line_exit_2(tmp_path, capsys):
    from dingo_gw.cli import build_svd, generate_dataset, ls

    cfg = write_yaml(tmp_path / "bank.yaml", {**BASE, "prior": {"chirp_mass": "Uniform(10, oops)"}})
    cases = [
        (generate_dataset.main, ["--config", str(cfg), "--out", str(tmp_path / "b.h5")], "error: config error|error: prior.chirp_mass"),
        (generate_dataset.main, ["--config", str(write_yaml(tmp_path / "ok.yaml", BASE)),
                                 "--out", str(tmp_path / "bank.yaml" / "b.h5")], "error: cannot create output folder"),
        (generate_dataset.main, ["--config", str(write_yaml(tmp_path / "coarse.yaml", {
            **BASE, "domain": {"f_min": 20.0, "f_max": 256.0, "delta_f": 2.0}})), "--out", str(tmp_path / "new" / "b.h5")],
         "error: domain.delta_f = 2.0 Hz gives segments of T = 1/delta_f = 0.5 s"),
        (ls.main, [str(tmp_path / "bank.yaml")], "error: cannot read .* not a valid HDF5 file"),
        (build_svd.main, ["--bank", str(tmp_path / "nothing.h5"), "--size", "3"], "error: waveform_bank file not found"),
    ]
    for main, argv, pattern in cases:
        with pytest.raises(SystemExit) as e:
            main(argv)
        err = capsys.readouterr().err.strip().splitlines()
        assert e.value.code == 2 and len(err) == 1, err
        assert re.match(pattern, err[0]), err[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bank.yaml", "coarse.yaml", "ok.yaml"]
