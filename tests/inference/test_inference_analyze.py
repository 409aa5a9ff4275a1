"""dingo_analyze end to end on tiny networks trained here (2 s, 20-128 Hz, IMRPhenomD).

- A GNPE network (with its initialisation network) on the real GW150914 strain: the command runs,
  writes its files, weights are finite, the same seed gives the same numbers.
- The same undertrained network on a loud injection: reported as a failed proposal, no posterior.
- A direct NPE network on a narrow prior (chirp mass, distance): importance sampling passes and
  the reweighted posterior and evidence match a brute-force grid posterior of the same data.
- Bad input: one clear error line each and no result files.
"""

import json
import logging
import math
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
from scipy.special import i0e, logsumexp

from dingo_gw.cli.analyze import main
from dingo_gw.config import parse_config
from dingo_gw.design_curves import design_asd
from dingo_gw.domain import FrequencyDomain
from dingo_gw.errors import DataError
from dingo_gw.inference import network as network_module, run_log
from dingo_gw.inference.analyze import AnalysisSettings, analyze
from dingo_gw.inference.injection import injection_data
from dingo_gw.inference.network import find_network, load_analysis_network
from dingo_gw.io.checksum import sha256_file
from dingo_gw.noise.event_psd import estimate_psds, injection_psds
from dingo_gw.noise.event_strain import check_glitches, read_strain
from dingo_gw.inference.importance.importance_sampling import log_prior
from dingo_gw.likelihood.gaussian import GaussianLikelihood
from dingo_gw.noise.asd_dataset import ASDDataset, save_asd_dataset
from dingo_gw.results import Result
from dingo_gw.train.config import parse_train_config
from dingo_gw.train.run import train
from dingo_gw.waveforms import WaveformGenerator, generate_bank
from dingo_gw.waveforms.config import BankConfig

logging.getLogger("bilby").setLevel(logging.WARNING)

DOMAIN = {"f_min": 20.0, "f_max": 128.0, "delta_f": 0.5}
PHASE = "Uniform(minimum=0.0, maximum=6.283185307179586, boundary='periodic')"
NO_SPIN = {"a_1": 0.0, "a_2": 0.0, "tilt_1": 0.0, "tilt_2": 0.0, "phi_12": 0.0, "phi_jl": 0.0}
DESIGN = {"H1": "design:aLIGOZeroDetHighPower", "L1": "design:aLIGOZeroDetHighPower"}
GW150914_FILES = ("H-H1_LOSC_4_V2-1126259446-32.hdf5", "L-L1_LOSC_4_V2-1126259446-32.hdf5")
GPS = 1126259462.4


def _bank(path, prior, n, seed):
    cfg = parse_config({"domain": DOMAIN, "waveform": {"approximant": "IMRPhenomD", "f_ref": 20.0}, "prior": prior,
                        "num_samples": n, "seed": seed, "chunk_size": 500,
                        "compression": {"svd": {"size": 16, "num_training_samples": 300,
                                                "num_validation_samples": 50}}}, BankConfig)
    generate_bank(cfg, path, progress=False)


def _train(out, bank, asd, params, model, gnpe, init, epochs, extrinsic=None):
    cfg = {
        "data": {"bank": str(bank), "asd_dataset": str(asd), "detectors": ["H1", "L1"], "inference_parameters": params,
                 "window_roll_off": 0.4, "validation_fraction": 0.1, "standardization_samples": 2000,
                 "extrinsic_prior": extrinsic},
        "model": {"type": "npe", **model, "gnpe": gnpe},
        "training": {"svd_samples": 200, "stages": [{"epochs": epochs, "batch_size": 128,
                                                      "optimizer": {"name": "adam", "lr": 2e-3},
                                                      "scheduler": {"name": "cosine", "min_lr": 1e-4}}]},
        "init_network": init,
        "local": {"device": "cpu", "num_threads": 1, "progress": False}, "seed": 1, "output_dir": str(out),
    }
    return train(parse_train_config(cfg)).network


@pytest.fixture(scope="module")
def networks(tmp_path_factory):
    """(GNPE network with init network, direct NPE network on a narrow prior), trained in ~10 s."""
    d = tmp_path_factory.mktemp("analyze_networks")
    domain = FrequencyDomain(**DOMAIN)
    rng = np.random.default_rng(0)
    asd = design_asd("aLIGOZeroDetHighPower", domain.frequencies, fill_below=20.0)
    save_asd_dataset(ASDDataset(domain, asds={k: asd[None] * rng.uniform(1, 3, (20, 1)) for k in ("H1", "L1")},
                                gps_times={}, sources={}), d / "asd.h5")
    _bank(d / "bank.h5", {"chirp_mass": "bilby.gw.prior.UniformInComponentsChirpMass(minimum=25.0, maximum=35.0)",
                          "mass_ratio": "bilby.gw.prior.UniformInComponentsMassRatio(minimum=0.5, maximum=1.0)",
                          **NO_SPIN, "theta_jn": "Sine(minimum=0.0, maximum=3.141592653589793)", "phase": PHASE},
          2000, 1)
    small = {"embedding": {"n_basis": 8, "hidden_dims": [64, 32], "output_dim": 16},
             "flow": {"transforms": 2, "bins": 4, "hidden_features": [32, 32]}}
    init = {"model": {"type": "npe", "embedding": {"n_basis": 4, "hidden_dims": [32], "output_dim": 8},
                      "flow": {"transforms": 2, "bins": 4, "hidden_features": [16, 16]}},
            "training": {"svd_samples": 100, "stages": [{"epochs": 1, "batch_size": 64,
                                                          "optimizer": {"name": "adam", "lr": 1e-3}}]}}
    gnpe = _train(d / "gnpe", d / "bank.h5", d / "asd.h5",
                  ["chirp_mass", "mass_ratio", "luminosity_distance", "geocent_time", "ra", "dec", "theta_jn", "psi"],
                  small, {"kernel": 0.001, "relative": True}, init, epochs=1)
    chirp_mass = "bilby.gw.prior.UniformInComponentsChirpMass(minimum=25.0, maximum=35.0)"
    _bank(d / "bank_narrow.h5", {"chirp_mass": chirp_mass, "mass_ratio": 0.8, **NO_SPIN, "theta_jn": 0.4,
                                 "phase": PHASE}, 3000, 2)
    direct = _train(d / "direct", d / "bank_narrow.h5", d / "asd.h5", ["chirp_mass", "luminosity_distance"],
                    {"embedding": small["embedding"],
                     "flow": {"transforms": 3, "bins": 8, "hidden_features": [32, 32]}},
                    None, None, epochs=6,
                    extrinsic={"luminosity_distance": "Uniform(minimum=200.0, maximum=1500.0)", "geocent_time": 0.0,
                               "ra": 1.2, "dec": 0.3, "psi": 0.7})
    # the same, with the distance left to importance sampling (drawn from its conditional posterior)
    no_distance = _train(d / "no_distance", d / "bank_narrow.h5", d / "asd.h5", ["chirp_mass"],
                         {"embedding": small["embedding"],
                          "flow": {"transforms": 3, "bins": 8, "hidden_features": [32, 32]}},
                         None, None, epochs=6,
                         extrinsic={"luminosity_distance": "Uniform(minimum=200.0, maximum=1500.0)",
                                    "geocent_time": 0.0, "ra": 1.2, "dec": 0.3, "psi": 0.7})
    return {"gnpe": gnpe, "direct": direct, "no_distance": no_distance}


def _files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def _fast(**kw):
    base = dict(num_samples=800, gibbs_iterations=5, gibbs_chains=400, workers=1, progress=False)
    base.update(kw)
    return AnalysisSettings(**base)


# -- end to end ---------------------------------------------------------------------------------
def test_event_analysis_writes_files_and_is_reproducible(networks, tmp_path, capsys):
    net = str(networks["gnpe"])
    with pytest.raises(SystemExit) as exit_info:
        main(["--event", "GW150914", "--network", net, "--outdir", str(tmp_path / "cli"), "--num-samples", "800",
              "--gibbs-iterations", "5", "--gibbs-chains", "400", "--workers", "1", "--no-progress"])
    files = _files(tmp_path / "cli")
    ok = exit_info.value.code == 0
    assert exit_info.value.code in (0, 1)
    assert files == sorted(["GW150914_corner.png", "GW150914_result.hdf5" if ok else "GW150914_failed_proposal.json"])
    printed = capsys.readouterr().out
    assert "proposal samples" in printed and "timings [s]" in printed

    a = analyze(_fast(event="GW150914", network=net, outdir=str(tmp_path / "a"), seed=3))
    b = analyze(_fast(event="GW150914", network=net, outdir=str(tmp_path / "b"), seed=3, result_format="json"))
    c = analyze(_fast(event="GW150914", network=net, outdir=str(tmp_path / "c"), seed=4))
    ra, rb = a.result, b.result
    if ra.ok:  # the same result in either format
        assert a.files["result"].name == "GW150914_result.hdf5" and b.files["result"].name == "GW150914_result.json"
        fa, fb = Result.load(a.files["result"]), Result.load(b.files["result"])
        np.testing.assert_array_equal(fa.log_weights, fb.log_weights)
        assert fa.meta_data["n_eff"] == fb.meta_data["n_eff"] and fa.log_evidence == fb.log_evidence
    assert ra.num_samples == 800 and np.all(np.isfinite(ra.weights))
    np.testing.assert_array_equal(ra.log_weights, rb.log_weights)
    for k in ra.samples:
        np.testing.assert_array_equal(ra.samples[k], rb.samples[k])
    assert ra.log_noise_evidence == rb.log_noise_evidence
    assert not np.array_equal(ra.samples["chirp_mass"], c.result.samples["chirp_mass"])
    meta = ra.meta_data
    assert meta["network"]["sha256"] == sha256_file(net)
    assert meta["psd"]["H1"]["source"] == "published" and meta["num_proposal_samples"] == 800
    assert {"load_network", "read_strain", "psd", "data", "sampling", "importance_sampling"} <= set(meta["timings"])
    assert meta["sampler"]["sampler"] == "gnpe_importance" and meta["sampler"]["initialisation"] == "init network"
    # the analysis segment [t - 1.5, t + 0.5] of the 2 s network, Tukey window with its roll-off
    assert meta["segment"][0] == pytest.approx(GPS - 1.5, abs=1 / 4096)
    assert meta["window"]["window_factor"] == pytest.approx(1 - 5 * 0.4 / 8, abs=1e-3)
    assert meta["line_bins"] == {"action": "keep"}  # the default: the network sees the data as they are


def test_network_warnings_are_held_until_the_network_result_stands(caplog):
    """While a refinement may replace the network's result, its warnings are logged as INFO; released,
    they are logged as WARNINGs after all."""
    name = "dingo_gw.inference.importance.importance_sampling"
    with caplog.at_level(logging.INFO):
        with run_log.hold_warnings(True, name) as held:
            logging.getLogger(name).warning("failed proposal: n_eff = %d", 1)
            logging.getLogger(name).info("an info line")
        assert [(r.levelno, r.getMessage()) for r in caplog.records] == [
            (logging.INFO, "failed proposal: n_eff = 1"), (logging.INFO, "an info line")]
        assert [r.levelno for r in held] == [logging.WARNING]
        caplog.clear()
        run_log.release_warnings(held)
        released = [(r.levelno, r.getMessage()) for r in caplog.records]
        assert released == [(logging.WARNING, "failed proposal: n_eff = 1")]
        caplog.clear()
        with run_log.hold_warnings(False, name) as held:  # disabled: nothing held
            logging.getLogger(name).warning("kept")
        assert held == [] and [r.levelno for r in caplog.records] == [logging.WARNING]
    assert not logging.getLogger(name).filters  # the filter is removed


def test_failed_proposal_is_reported_not_as_a_posterior(networks, tmp_path, capsys, caplog):
    inj = tmp_path / "loud.json"
    inj.write_text(json.dumps({"chirp_mass": 30.0, "mass_ratio": 0.8, **NO_SPIN, "theta_jn": 0.3, "phase": 1.0,
                               "luminosity_distance": 150.0, "geocent_time": 0.01, "ra": 1.0, "dec": 0.2,
                               "psi": 0.5}))
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as exit_info:
        main(["--injection", str(inj), "--network", str(networks["gnpe"]), "--outdir", str(out), "--psd",
              "H1=design:aLIGOZeroDetHighPower", "--psd", "L1=design:aLIGOZeroDetHighPower", "--num-samples", "600",
              "--gibbs-iterations", "5", "--workers", "1", "--no-progress", "--label", "loud"])
    assert exit_info.value.code == 1
    assert _files(out) == ["loud_corner.png", "loud_failed_proposal.json"]
    report = json.loads((out / "loud_failed_proposal.json").read_text())
    assert report["status"] == "failed_proposal" and report["n_eff"] < 10
    assert "does not" in report["failure_reason"]  # "... does not cover the posterior / describe these data"
    assert "FAILED PROPOSAL" in capsys.readouterr().out
    warned = [r for r in caplog.records if r.levelno == logging.WARNING and "failed proposal" in r.getMessage()]
    assert warned  # no refinement replaced the network's result: its warning stands


def test_injection_into_real_noise_adds_the_signal_to_the_windowed_segment(networks, tmp_path, data_dir):
    """--injection with --strain and --gps: d = h + the Tukey-windowed FFT of the strain's analysis segment
    at --gps (here 10 s before GW150914: no signal of its own), with the PSD and line search of real data."""
    from dingo_gw.inference.injection import signal_strain
    from dingo_gw.io.strain import read_strain as read_strain_file
    from dingo_gw.noise.event_strain import segment_fd

    truth = {"chirp_mass": 30.0, "mass_ratio": 0.8, **NO_SPIN, "theta_jn": 0.4, "phase": 1.0,
             "luminosity_distance": 800.0, "geocent_time": 0.01, "ra": 1.2, "dec": 0.3, "psi": 0.7}
    gps = GPS - 10.0
    strain = {d: str(data_dir / f) for d, f in zip(("H1", "L1"), GW150914_FILES)}
    out = analyze(_fast(injection=truth, strain_files=strain, gps=gps, network=str(networks["gnpe"]),
                        outdir=str(tmp_path), label="real_noise", refine="never", lines="replace"))
    meta = out.result.meta_data
    assert meta["injection"]["noise"] == "given" and meta["psd"]["H1"]["source"] == "welch"
    assert meta["injection"]["noise_segment"][0] == pytest.approx(gps - 1.5, abs=1 / 4096)
    # spectral lines looked for in the 30 s of off-source strain (14 segments of 2 s besides the analysis one)
    assert meta["line_bins"]["action"] == "replace" and meta["line_bins"]["H1"]["segments"] >= 10
    assert out.result.injection_parameters["chirp_mass"] == 30.0

    net = load_analysis_network(networks["gnpe"])
    strains = {d: read_strain_file(p, d) for d, p in strain.items()}
    noise, _, _ = segment_fd(strains, net.detectors, net.domain, gps, 0.5, net.window_roll_off)
    with WaveformGenerator("IMRPhenomD", net.domain, 20.0) as gen:
        event, params = injection_data(net, truth, gps, gen, {d: np.ones(len(net.domain)) for d in net.detectors}, 0,
                                       noise=noise)
        h = signal_strain(params, net.detectors, gen, gps)
    m = net.domain.mask
    for d in net.detectors:
        np.testing.assert_allclose(event.strain[d][m], h[d][m] + noise[d][m], rtol=1e-12, atol=1e-30)
        assert np.all(event.strain[d][~m] == 0)


def _narrow_injection(networks, tmp_path, **kw):
    """GW-like injection (IMRPhenomD, chirp mass and distance free, network SNR ~ 10) analysed by the
    2-parameter direct network; returns (analysis output, grid posterior: dict with the flattened grid
    (chirp_mass, luminosity_distance), normalised probabilities p and log evidence log_z)."""
    # noise 3x the design ASD (inside the training ASDs' range)
    f = np.arange(0.0, 256.0, 0.25)
    psd_file = tmp_path / "psd_3x_design.txt"
    np.savetxt(psd_file, np.column_stack([f, 9 * design_asd("aLIGOZeroDetHighPower", f, fill_below=10.0) ** 2]))
    psd_files = {"H1": str(psd_file), "L1": str(psd_file)}
    truth = {"chirp_mass": 30.0, "mass_ratio": 0.8, **NO_SPIN, "theta_jn": 0.4, "phase": 1.0,
             "luminosity_distance": 1200.0, "geocent_time": 0.0, "ra": 1.2, "dec": 0.3, "psi": 0.7}
    settings = _fast(injection=truth, network=str(networks["direct"]), psd_files=psd_files, outdir=str(tmp_path),
                     num_samples=2000, label="narrow", seed=0, **kw)
    out = analyze(settings)

    # brute force: the same data, log L on a (chirp mass, distance) grid, phase marginalised exactly
    # (IMRPhenomD: log L(φ) = c + κ cos(2φ + α), so ∫ L dφ / 2π = e^c I0(κ))
    net = load_analysis_network(networks["direct"])
    psds, _ = injection_psds(psd_files, net.domain, net.detectors, None)
    with WaveformGenerator("IMRPhenomD", net.domain, 20.0) as gen:
        event, params = injection_data(net, settings.injection, GPS, gen, psds, settings.seed)
        like = GaussianLikelihood(event.strain, event.psds, event.domain, gen, GPS, time_origin=event.segment_start)
        mc, dl = np.linspace(29.2, 31.0, 121), np.linspace(700.0, 1500.0, 161)
        M, D = (x.ravel() for x in np.meshgrid(mc, dl, indexing="ij"))
        grid = {k: np.full(M.size, v) for k, v in truth.items()}
        grid.update(chirp_mass=M, luminosity_distance=D, phase=np.zeros(M.size))
        hp, hc, failed = like.polarizations(grid)
        dh, hh = like.overlaps(grid, hp, hc)
    assert not failed.any()
    kappa = np.abs(dh)
    log_l = like.log_noise_evidence() - 0.5 * hh + kappa + np.log(i0e(kappa))
    log_p = log_prior(net.prior, grid) + math.log(2 * math.pi)  # phase marginalised: drop its prior density
    log_post = log_l + log_p
    p = np.exp(log_post - logsumexp(log_post))
    log_z = logsumexp(log_post) + math.log((mc[1] - mc[0]) * (dl[1] - dl[0]))
    return out, {"chirp_mass": M, "luminosity_distance": D, "p": p, "log_z": log_z}


def _assert_matches_grid(r, grid):
    w = r.weights
    for name in ("chirp_mass", "luminosity_distance"):
        x, p = grid[name], grid["p"]
        mean_grid = np.sum(p * x)
        std_grid = np.sqrt(np.sum(p * (x - mean_grid) ** 2))
        y = np.where(w > 0, r.samples[name], 0.0)  # recovered parameters are NaN where the weight is zero
        mean = np.sum(w * y)
        std = np.sqrt(np.sum(w * (y - mean) ** 2))
        assert abs(mean - mean_grid) < 5 * std_grid / np.sqrt(r.n_eff) + 0.02 * std_grid
        assert abs(std / std_grid - 1) < 0.12
    assert abs(r.log_evidence - grid["log_z"]) < 4 * r.log_evidence_err + 0.05


def test_importance_sampling_passes_and_matches_a_grid_posterior(networks, tmp_path):
    import bilby

    out, grid = _narrow_injection(networks, tmp_path)
    r = out.result
    assert r.ok and r.n_eff > 100 and np.all(np.isfinite(r.weights))
    assert "refinement" not in r.meta_data  # efficient enough on its own
    assert out.files["result"].name == "narrow_result.hdf5"
    post = bilby.core.result.read_in_result(str(out.files["result"])).posterior
    assert {"chirp_mass", "luminosity_distance", "phase", "mass_1", "geocent_time"} <= set(post.columns)
    assert np.allclose(post["geocent_time"], GPS)
    _assert_matches_grid(r, grid)
    assert r.log_bayes_factor > 10  # a clear signal


def test_network_without_distance_gets_it_from_its_conditional_posterior(networks, tmp_path):
    """A network that does not infer the distance: importance sampling draws it with the phase from
    their conditional posterior, and the weighted posterior matches the brute-force grid."""
    out, grid = _narrow_injection({"direct": networks["no_distance"]}, tmp_path)
    r = out.result
    assert r.ok and "refinement" not in r.meta_data
    assert r.meta_data["recovered_parameters"] == ["phase", "luminosity_distance"]
    d = r.samples["luminosity_distance"][r.weights > 0]
    assert len(d) > 1000 and np.all((d >= 200.0) & (d <= 1500.0))
    _assert_matches_grid(r, grid)
    # the distance costs the network nothing: its efficiency is not below the 2-parameter network's
    assert r.meta_data["sample_efficiency"] > 0.2


@pytest.mark.parametrize("start", ["network", "prior"])
def test_refinement_matches_the_grid_posterior(networks, tmp_path, start):
    """Refinement forced (required efficiency 100 %): SMC + importance sampling of the fitted proposal
    gives the grid posterior and evidence, with a higher efficiency than the network's own; also when
    the SMC starts from the prior instead of the network's samples (--refine-start prior)."""
    out, grid = _narrow_injection(networks, tmp_path, refine_efficiency=1.0, refine_particles=400,
                                  refine_start=start)
    r = out.result
    info = r.meta_data["refinement"]
    assert info["status"] == "done" and r.ok and info["start"] == start
    assert [s["stage"] for s in info["stages"]] == ["smc", "importance_sampling"] and info["stages"][0]["beta"] == 1.0
    assert r.meta_data["sample_efficiency"] > info["network_proposal"]["sample_efficiency"]
    assert "refinement" in r.meta_data["timings"]
    # distance marginalisation: the fitted proposal leaves the distance out, it is drawn given the rest
    assert info["recovered_parameters"] == ["phase", "luminosity_distance"]
    assert "luminosity_distance" not in info["final_proposal"]["coordinates"]["keys"]
    # relative binning, then exact weights: the rule's residual and the audit of the samples it left
    exact = info["stages"][1]["exact_likelihood"]
    assert exact["unevaluated_weight_fraction"] < exact["exact_weight_residual"]
    assert exact["audit"]["num_audited"] > 0 and exact["audit"]["action"].startswith("none")
    assert exact["audit"]["estimated_unevaluated_weight_fraction"] < 1e-2  # EXACT_AUDIT_LIMIT
    _assert_matches_grid(r, grid)


# -- bad input --------------------------------------------------------------------------------
def _error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ")
    return err[0]


def _run(argv, capsys) -> str:
    with pytest.raises(SystemExit) as e:
        main(argv + ["--no-progress", "--workers", "1", "--num-samples", "200"])
    assert e.value.code == 2
    return _error_line(capsys)


def test_missing_strain_file_names_the_file_and_folders(networks, tmp_path, capsys, data_dir):
    out = tmp_path / "out"
    line = _run(["--gps", str(GPS), "--strain", "H1=H-H1_MISSING-1126259446-32.hdf5",
                 "--strain", f"L1={data_dir / GW150914_FILES[1]}", "--network", str(networks["gnpe"]),
                 "--outdir", str(out), "--data-dir", str(tmp_path)], capsys)
    assert "H-H1_MISSING-1126259446-32.hdf5" in line and str(tmp_path) in line
    assert _files(out) == []


def test_nan_in_strain_is_refused(networks, tmp_path, capsys, data_dir):
    bad = tmp_path / GW150914_FILES[0]
    shutil.copy(data_dir / GW150914_FILES[0], bad)
    with h5py.File(bad, "r+") as f:
        f["strain/Strain"][70000:70010] = np.nan
    out = tmp_path / "out"
    line = _run(["--gps", str(GPS), "--strain", f"H1={bad}", "--strain", f"L1={data_dir / GW150914_FILES[1]}",
                 "--network", str(networks["gnpe"]), "--outdir", str(out)], capsys)
    assert "NaN" in line and GW150914_FILES[0] in line
    assert _files(out) == []


def _gwosc_copy(src: Path, folder: Path, rate: int, duration: int = 32) -> Path:
    """A GWOSC-format copy of ``src``: the first ``duration`` s, decimated (every k-th sample) to ``rate`` Hz."""
    with h5py.File(src) as f:
        x = f["strain/Strain"][()]
        fs = int(round(1 / f["strain/Strain"].attrs["Xspacing"]))
        t0 = int(f["strain/Strain"].attrs["Xstart"])
    path = folder / f"{src.name[:2]}{src.name[2:4]}_TEST_V1-{t0}-{duration}.hdf5"
    with h5py.File(path, "w") as f:
        ds = f.create_dataset("strain/Strain", data=x[: duration * fs: fs // rate])
        ds.attrs["Xspacing"], ds.attrs["Xstart"] = 1.0 / rate, t0
        f["meta/GPSstart"], f["meta/Duration"], f["meta/Detector"] = t0, duration, src.name[2:4]
    return path


def test_network_data_mismatch_is_a_clear_error(networks, tmp_path, capsys, data_dir):
    out = tmp_path / "out"
    (tmp_path / "short").mkdir()
    line = _run(["--gps", str(GPS), "--strain", f"H1={data_dir / GW150914_FILES[0]}",
                 "--network", str(networks["gnpe"]), "--outdir", str(out)], capsys)
    assert "needs data of H1, L1" in line
    low = [_gwosc_copy(data_dir / name, tmp_path, 128) for name in GW150914_FILES]
    line = _run(["--gps", str(GPS), "--strain", f"H1={low[0]}", "--strain", f"L1={low[1]}",
                 "--network", str(networks["gnpe"]), "--outdir", str(out)], capsys)
    assert "sample rate 128 Hz is below 2 f_max = 256 Hz" in line
    # strain that does not reach the analysis segment [t - 1.5, t + 0.5]
    short = [_gwosc_copy(data_dir / name, tmp_path / "short", 4096, duration=8) for name in GW150914_FILES]
    line = _run(["--gps", str(GPS), "--strain", f"H1={short[0]}", "--strain", f"L1={short[1]}",
                 "--network", str(networks["gnpe"]), "--outdir", str(out)], capsys)
    assert "does not contain the analysis segment" in line
    # a PSD file that does not reach the network's f_max
    psd = tmp_path / "short_psd.txt"
    f = np.arange(0, 100.0, 0.5)
    np.savetxt(psd, np.column_stack([f, np.full(f.size, 1e-46)]))
    line = _run(["--event", "GW150914", "--psd", f"H1={psd}", "--network", str(networks["gnpe"]),
                 "--outdir", str(out)], capsys)
    assert "covers 0-99.5 Hz" in line and "20-128 Hz" in line
    assert _files(out) == []


def test_unwritable_outdir_and_missing_network(networks, tmp_path, capsys, monkeypatch):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    line = _run(["--event", "GW150914", "--network", str(networks["gnpe"]), "--outdir", str(blocker / "out")], capsys)
    assert "cannot create output folder" in line
    # a catalogue entry whose file is missing
    from dingo_gw.inference import network_catalog

    folder = tmp_path / "data" / "networks"
    folder.mkdir(parents=True)
    (folder / "networks.json").write_text(json.dumps({"networks": [
        {"name": "default", "path": "gone/network.pt", "detectors": ["H1", "L1"], "chirp_mass": [15, 60]}]}))
    line = _run(["--event", "GW150914", "--outdir", str(tmp_path / "out"), "--data-dir", str(tmp_path / "data")], capsys)
    assert "shipped network 'default' listed in networks/networks.json is missing" in line and "gone" in line
    assert _files(tmp_path / "out") == []
    # no catalogue at all: the default network file, missing too
    monkeypatch.setattr(network_catalog, "CATALOG", Path("networks") / "absent.json")
    monkeypatch.setattr(network_module, "DEFAULT_NETWORK", Path("networks") / "absent" / "network.pt")
    line = _run(["--event", "GW150914", "--outdir", str(tmp_path / "out")], capsys)
    assert "networks/absent/network.pt" in line and "dingo_train" in line
    assert _files(tmp_path / "out") == []
    with pytest.raises(DataError, match="network file not found"):
        find_network(tmp_path / "nope.pt")


def test_glitch_in_the_analysis_segment_is_gated_or_refused(data_dir):
    """GW170814: L1 has a 12-sigma transient at GPS 1186741855.769, inside the 8 s segment [t-6, t+2]."""
    from dingo_gw.events import get_event

    event = get_event("GW170814")
    segment = (event.gps - 6.0, event.gps + 2.0)
    strains = read_strain({d: event.strain_path(d) for d in ("H1", "L1")}, segment)
    gated, report = check_glitches(strains, event.gps, segment, "gate")
    times = [g["time"] for g in report["L1"]["glitches"]]
    assert len(times) == 1 and times[0] == pytest.approx(1186741855.769, abs=0.01)
    assert report["H1"]["glitches"] == []
    s = gated["L1"]
    i = s.index(times[0])
    assert np.all(s.data[i - 100:i + 100] == 0) and np.array_equal(gated["H1"].data, strains["H1"].data)
    with pytest.raises(DataError, match="loud transient"):
        check_glitches(strains, event.gps, segment, "error")


def test_welch_psd_when_no_published_psd(data_dir):
    """GW151226 has no published PSD here: Welch on the off-source part of its 32 s files (2 s segments
    for an 8 s network), which agrees with a Welch estimate of the whole file within its scatter."""
    from dingo_gw.events import get_event
    from dingo_gw.noise.psd import estimate_psd

    event = get_event("GW151226")
    domain = FrequencyDomain(20.0, 512.0, 0.125)
    segment = (event.gps - 6.0, event.gps + 2.0)
    strains = read_strain({"H1": event.strain_path("H1")}, segment)
    psds, info = estimate_psds(strains, domain, segment, {}, event, None, 0.4, ["H1"])
    assert info["H1"]["source"] == "welch" and info["H1"]["segment_duration"] == 2.0
    assert info["H1"]["num_segments"] >= 8 and info["H1"]["strain"].endswith("H-H1_LOSC_4_V2-1135136334-32.hdf5")
    reference = estimate_psd(strains["H1"], domain, None, 0.4, segment_duration=4.0)
    band = domain.mask & (domain.frequencies > 30) & (domain.frequencies < 400)
    ratio = np.log(psds["H1"][band] / reference[band])
    assert abs(np.median(ratio)) < 0.15


# -- --target-neff: more proposal batches --------------------------------------------------------
def _target_settings(networks, tmp_path, **kw):
    f = np.arange(0.0, 256.0, 0.25)
    psd_file = tmp_path / "psd_3x_design.txt"
    np.savetxt(psd_file, np.column_stack([f, 9 * design_asd("aLIGOZeroDetHighPower", f, fill_below=10.0) ** 2]))
    truth = {"chirp_mass": 30.0, "mass_ratio": 0.8, **NO_SPIN, "theta_jn": 0.4, "phase": 1.0,
             "luminosity_distance": 1200.0, "geocent_time": 0.0, "ra": 1.2, "dec": 0.3, "psi": 0.7}
    return _fast(injection=truth, network=str(networks["direct"]), psd_files={"H1": str(psd_file), "L1": str(psd_file)},
                 num_samples=300, seed=0, refine="never", corner=False, **kw)


def test_target_neff_draws_batches_until_reached_or_budget_spent(networks, tmp_path):
    from dingo_gw.inference.outputs import summary_text

    one = analyze(_target_settings(networks, tmp_path, outdir=str(tmp_path / "one"), label="one")).result
    assert "stop_reason" not in one.meta_data and one.num_samples == 300
    target = 2.5 * one.n_eff  # above one batch's n_eff
    out = analyze(_target_settings(networks, tmp_path, outdir=str(tmp_path / "t"), label="t", target_neff=target))
    r, meta = out.result, out.result.meta_data
    assert meta["stop_reason"] == "target_neff" and meta["num_batches"] >= 3 and r.n_eff >= target
    assert r.num_samples == 300 * meta["num_batches"] == meta["num_proposal_samples"]
    assert meta["target_neff"]["proposal"] == "network" and meta["target_neff"]["num_draws"] == r.num_samples
    np.testing.assert_array_equal(r.log_weights[:300], one.log_weights)  # batch 1 is the default run, to the digit
    assert not np.array_equal(r.log_weights[300:600], one.log_weights)  # later batches: fresh draws
    assert r.ok and len(r.posterior["chirp_mass"]) == round(r.n_eff)
    assert "stopped (target_neff)" in summary_text(out)
    # an impossible target within a budget of 500 draws: a full batch and one cut to the 200 left
    out = analyze(_target_settings(networks, tmp_path, outdir=str(tmp_path / "m"), label="m", target_neff=1e8,
                                   max_samples=500))
    meta = out.result.meta_data
    assert meta["stop_reason"] == "max_samples" and meta["num_batches"] == 2 and out.result.num_samples == 500
    assert "stopped (max_samples)" in summary_text(out)
