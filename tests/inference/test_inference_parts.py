"""Importance sampling in parts: ``dingo_analyze --is-parts N`` saves the proposal, ``--proposal FILE
--is-part K`` computes part K, ``dingo_result merge`` combines them. The merged result equals a
single dingo_analyze run with the same seed and number of parts (weights, evidence, n_eff, the
resampled posterior), and foreign or missing parts are clear errors."""

import json
import logging

import numpy as np
import pytest

from dingo_gw.cli.analyze import main as analyze_main
from dingo_gw.cli.result import main as result_main
from dingo_gw.config import parse_config
from dingo_gw.design_curves import design_asd
from dingo_gw.domain import FrequencyDomain
from dingo_gw.errors import ConfigError, DataError
from dingo_gw.inference.analyze import AnalysisSettings, analyze
from dingo_gw.inference.importance.parts import load_proposal, merge_parts, run_part
from dingo_gw.noise.asd_dataset import ASDDataset, save_asd_dataset
from dingo_gw.results import Result
from dingo_gw.train.config import parse_train_config
from dingo_gw.train.run import train
from dingo_gw.waveforms import generate_bank
from dingo_gw.waveforms.config import BankConfig

logging.getLogger("bilby").setLevel(logging.WARNING)

DOMAIN = {"f_min": 20.0, "f_max": 128.0, "delta_f": 0.5}
PHASE = "Uniform(minimum=0.0, maximum=6.283185307179586, boundary='periodic')"
NO_SPIN = {"a_1": 0.0, "a_2": 0.0, "tilt_1": 0.0, "tilt_2": 0.0, "phi_12": 0.0, "phi_jl": 0.0}
TRUTH = {"chirp_mass": 30.0, "mass_ratio": 0.8, **NO_SPIN, "theta_jn": 0.4, "phase": 1.0,
         "luminosity_distance": 1200.0, "geocent_time": 0.0, "ra": 1.2, "dec": 0.3, "psi": 0.7}
N_SAMPLES, N_PARTS, SEED = 1200, 3, 4


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """A direct NPE network (chirp mass, distance; narrow prior) trained in seconds, and an injection file."""
    d = tmp_path_factory.mktemp("parts")
    domain = FrequencyDomain(**DOMAIN)
    asd = design_asd("aLIGOZeroDetHighPower", domain.frequencies, fill_below=20.0)
    rng = np.random.default_rng(0)
    save_asd_dataset(ASDDataset(domain, asds={k: asd[None] * rng.uniform(1, 3, (20, 1)) for k in ("H1", "L1")},
                                gps_times={}, sources={}), d / "asd.h5")
    generate_bank(parse_config({
        "domain": DOMAIN, "waveform": {"approximant": "IMRPhenomD", "f_ref": 20.0},
        "prior": {"chirp_mass": "bilby.gw.prior.UniformInComponentsChirpMass(minimum=25.0, maximum=35.0)",
                  "mass_ratio": 0.8, **NO_SPIN, "theta_jn": 0.4, "phase": PHASE},
        "num_samples": 3000, "seed": 2, "chunk_size": 500,
        "compression": {"svd": {"size": 16, "num_training_samples": 300, "num_validation_samples": 50}},
    }, BankConfig), d / "bank.h5", progress=False)
    network = train(parse_train_config({
        "data": {"bank": str(d / "bank.h5"), "asd_dataset": str(d / "asd.h5"), "detectors": ["H1", "L1"],
                 "inference_parameters": ["chirp_mass", "luminosity_distance"], "window_roll_off": 0.4,
                 "validation_fraction": 0.1, "standardization_samples": 2000,
                 "extrinsic_prior": {"luminosity_distance": "Uniform(minimum=200.0, maximum=1500.0)",
                                     "geocent_time": 0.0, "ra": 1.2, "dec": 0.3, "psi": 0.7}},
        "model": {"type": "npe", "embedding": {"n_basis": 8, "hidden_dims": [64, 32], "output_dim": 16},
                  "flow": {"transforms": 3, "bins": 8, "hidden_features": [32, 32]}, "gnpe": None},
        "training": {"svd_samples": 200, "stages": [{"epochs": 6, "batch_size": 128,
                                                      "optimizer": {"name": "adam", "lr": 2e-3},
                                                      "scheduler": {"name": "cosine", "min_lr": 1e-4}}]},
        "local": {"device": "cpu", "num_threads": 1, "progress": False}, "seed": 1, "output_dir": str(d / "net"),
    })).network
    injection = d / "injection.json"
    injection.write_text(json.dumps(TRUTH))
    # noise 3x the design ASD (inside the training ASDs' range): network SNR ~ 10
    f = np.arange(0.0, 256.0, 0.25)
    psd = d / "psd_3x_design.txt"
    np.savetxt(psd, np.column_stack([f, 9 * design_asd("aLIGOZeroDetHighPower", f, fill_below=10.0) ** 2]))
    return {"network": str(network), "injection": str(injection), "psd": str(psd)}


def common_args(setup, outdir):
    return ["--injection", setup["injection"], "--network", setup["network"], "--psd", f"H1={setup['psd']}",
            "--psd", f"L1={setup['psd']}", "--outdir", str(outdir),
            "--label", "inj", "--num-samples", str(N_SAMPLES), "--seed", str(SEED), "--workers", "1", "--no-progress",
            "--no-corner"]


def exit_code(main, argv) -> int:
    with pytest.raises(SystemExit) as e:
        main(argv)
    return e.value.code


def assert_same_result(a: Result, b: Result):
    assert a.status == b.status
    np.testing.assert_array_equal(a.log_weights, b.log_weights)
    for name in ("log_likelihood", "log_prior", "log_proposal"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert sorted(a.samples) == sorted(b.samples)
    for k in a.samples:
        np.testing.assert_array_equal(a.samples[k], b.samples[k])
    assert a.log_evidence == b.log_evidence and a.log_evidence_err == b.log_evidence_err
    assert a.log_noise_evidence == b.log_noise_evidence
    assert a.n_eff == b.n_eff and a.meta_data["n_eff"] == b.meta_data["n_eff"]
    if a.posterior is not None:
        for k in a.posterior:
            np.testing.assert_array_equal(a.posterior[k], b.posterior[k])
    assert a.injection_parameters == b.injection_parameters


def test_parts_merge_to_the_single_run(setup, tmp_path, capsys):
    single = analyze(AnalysisSettings(
        injection=setup["injection"], network=setup["network"],
        psd_files={"H1": setup["psd"], "L1": setup["psd"]},
        outdir=str(tmp_path / "single"), label="inj", num_samples=N_SAMPLES, seed=SEED, workers=1, progress=False,
        corner=False, is_parts=N_PARTS, refine="never")).result  # part jobs do not refine
    assert single.ok and single.n_eff > 50  # a posterior, not a failed proposal

    run = tmp_path / "parts"
    assert exit_code(analyze_main, common_args(setup, run) + ["--is-parts", str(N_PARTS)]) == 0
    proposal = run / "inj_proposal.h5"
    assert sorted(p.name for p in run.iterdir()) == ["inj_proposal.h5"]  # no result yet
    assert f"--is-part K  for K = 1..{N_PARTS}" in capsys.readouterr().out
    saved = load_proposal(proposal)
    assert saved.num_parts == N_PARTS and len(saved.proposal) == N_SAMPLES

    for k in (3, 1, 2):  # part jobs, in any order
        assert exit_code(analyze_main, ["--proposal", str(proposal), "--is-part", str(k), "--workers", "1",
                                        "--no-progress"]) == 0
    parts = sorted((run / "inj_is_parts").iterdir())
    assert [p.name for p in parts] == [f"part_{k}_of_{N_PARTS}.h5" for k in (1, 2, 3)]
    capsys.readouterr()

    assert exit_code(result_main, ["merge", *map(str, reversed(parts))]) == 0
    printed = capsys.readouterr().out
    assert "n_eff" in printed and "result:" in printed
    # --no-corner of the analysis holds for the merge
    assert sorted(p.name for p in run.iterdir()) == ["inj_is_parts", "inj_proposal.h5", "inj_result.hdf5"]
    merged_file = Result.load(run / "inj_result.hdf5")
    single_file = Result.load(tmp_path / "single" / "inj_result.hdf5")
    assert_same_result(single_file, merged_file)
    assert merged_file.meta_data["importance_sampling_parts"]["num_parts"] == N_PARTS

    # in memory too (no file round trip), into another result file
    out = merge_parts(parts, outdir=tmp_path / "again", label="again", corner=False, result_format="json")
    assert_same_result(single, out.result)
    assert sorted(p.name for p in (tmp_path / "again").iterdir()) == ["again_result.json"]
    # --out picks the format by its extension
    assert exit_code(result_main, ["merge", *map(str, parts), "--out", str(tmp_path / "j" / "x_result.json")]) == 0
    assert sorted(p.name for p in (tmp_path / "j").iterdir()) == ["x_result.json"]
    assert_same_result(single_file, Result.load(tmp_path / "j" / "x_result.json"))

    assert exit_code(result_main, ["summary", str(run / "inj_result.hdf5")]) == 0
    assert "chirp_mass" in capsys.readouterr().out


def test_missing_foreign_and_bad_parts_are_clear_errors(setup, tmp_path, capsys):
    run = tmp_path / "a"
    assert exit_code(analyze_main, common_args(setup, run) + ["--is-parts", "2"]) == 0
    other = tmp_path / "b"  # another seed: another proposal
    assert exit_code(analyze_main, common_args(setup, other)[:-1] + ["--seed", "9", "--is-parts", "2",
                                                                     "--no-corner"]) == 0
    p1 = run_part(run / "inj_proposal.h5", 1, progress=False)
    foreign = run_part(other / "inj_proposal.h5", 2, progress=False)
    capsys.readouterr()

    with pytest.raises(DataError, match=r"part 2/2 is missing"):
        merge_parts([p1])
    with pytest.raises(DataError, match="computed from another proposal"):
        merge_parts([p1, foreign], proposal_path=run / "inj_proposal.h5")
    with pytest.raises(DataError, match="given twice"):
        merge_parts([p1, p1])
    with pytest.raises(ConfigError, match=r"--is-part must be 1..2"):
        run_part(run / "inj_proposal.h5", 3)
    # a part file whose content does not match the proposal (here: another proposal's part renamed)
    fake = run / "inj_is_parts" / "part_2_of_2.h5"
    fake.write_bytes(foreign.read_bytes())
    with pytest.raises(DataError, match="another proposal"):
        merge_parts([p1, fake], proposal_path=run / "inj_proposal.h5")

    for argv, message in (
        (["merge", str(p1)], "part 2/2 is missing"),
        (["merge", str(p1), "--out", str(tmp_path / "x.json")], "--out must name a file LABEL_result.hdf5 or LABEL_result.json"),
        (["summary", str(tmp_path / "none.json")], "result file not found"),
    ):
        assert exit_code(result_main, argv) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("error: ") and message in err and "\n" not in err
    assert exit_code(analyze_main, ["--is-part", "1", "--workers", "1"]) == 2
    assert "--proposal FILE and --is-part K go together" in capsys.readouterr().err
    assert not (run / "inj_result.hdf5").exists()
