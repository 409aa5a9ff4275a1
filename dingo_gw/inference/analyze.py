"""End-to-end analysis of one event (or any strain, or an injection): ``dingo_analyze``.

The driver reads as the data flow, one call into the part that owns each step:

1. the network file (:mod:`dingo_gw.inference.network`): weights, metadata, prior, waveform model,
   embedded GNPE initialisation network, sha256;
2. strain (:mod:`dingo_gw.noise.event_strain`): every network detector's file around the trigger
   time (event catalogue, ``--strain DET=FILE``, data folders), loud transients in the analysis
   segment gated (default), refused or ignored;
3. PSDs (:mod:`dingo_gw.noise.event_psd`): a user file, else the event's published PSD, else Welch;
   spectral lines the PSD lacks, found in the off-source strain (:mod:`dingo_gw.noise.line_bins`);
4. whitening (:mod:`dingo_gw.inference.event_data`): the Tukey-windowed, FFT'd analysis segment
   whitened as in training, with --lines replace its line bins Gaussian noise in the network's input (or a
   simulated injection in Gaussian or real noise, :mod:`dingo_gw.inference.injection`);
5. network sampling (:mod:`dingo_gw.inference.sampling.proposal`): GNPE Gibbs sampling + the
   extended-space proposal, or direct NPE/FMPE sampling, with log q;
6. importance sampling (:mod:`dingo_gw.inference.importance.network_proposal`): exact likelihood ×
   prior / q (phase recovered), evidence; parts of 5000 samples are checkpointed in
   ``<outdir>/.<label>.checkpoints`` so that a killed run, restarted with the same arguments, redoes
   only unfinished parts; a weak proposal is refined (:mod:`dingo_gw.inference.refine.stage`);
7. the result (:mod:`dingo_gw.inference.outputs`): ``<label>_result.hdf5`` (``.json`` with
   ``result_format="json"``; or ``<label>_failed_proposal.json``) and ``<label>_corner.png``,
   written only at the end.

Reproducibility: torch's global generator and all numpy generators are seeded from ``seed``;
the same inputs, seed and thread settings give the same numbers.
"""

from __future__ import annotations

import math
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

import numpy as np
import torch

from dingo_gw.errors import ConfigError
from dingo_gw.events import Event, get_event
from dingo_gw.inference.event_data import EventData, frequency_domain_data
from dingo_gw.inference.importance import importance_sampling, network_proposal
from dingo_gw.inference.importance.importance_sampling import DrawBudget
from dingo_gw.inference.importance.network_proposal import combine_batches, importance_sample_proposal
from dingo_gw.inference.injection import injection_data
from dingo_gw.inference.network import AnalysisNetwork, load_analysis_network, network_generator
from dingo_gw.inference.network_catalog import choose_network
from dingo_gw.inference.outputs import AnalysisOutput, write_outputs
from dingo_gw.inference.refine.flow_density import torch_threads
from dingo_gw.inference.refine.refine import DEFAULT_TARGET_EFFICIENCY
from dingo_gw.inference.refine.stage import needs_refinement, refine_result
from dingo_gw.inference.run_log import hold_warnings, release_warnings, timed_step
from dingo_gw.inference.sampling.gnpe_sampler import (
    DEFAULT_BATCH_SIZE, DEFAULT_GIBBS_ITERATIONS, DEFAULT_TIME_SPREAD, ProposalSamples,
)
from dingo_gw.inference.sampling.proposal import complete_from_prior, sample_proposal
from dingo_gw.io.atomic import prepare_outdir
from dingo_gw.io.checksum import sha256_file
from dingo_gw.likelihood.gaussian import GaussianLikelihood
from dingo_gw.noise.event_psd import estimate_psds, injection_psds
from dingo_gw.noise.line_bins import find_line_bins
from dingo_gw.noise.event_strain import (
    analysis_segment, check_glitches, post_trigger, read_strain, resolve_strain_files, segment_fd, segment_of,
    strain_paths,
)
from dingo_gw.results import Result


#: Importance-sampled samples per checkpointed part (a killed run resumes from finished parts).
IS_PART_SIZE = 5000


@dataclass
class AnalysisSettings:
    """What to analyse and how. Times are GPS seconds; files are paths.

    Data: ``event`` (catalogue name) or ``gps`` with ``strain_files`` (detector -> file), or
    ``injection`` ("prior", a JSON file or a mapping; simulated Gaussian noise, or with ``strain_files``
    and ``gps`` added to the real noise of the analysis segment at ``gps``). ``psd_files``:
    detector -> PSD text file (f, PSD [1/Hz]; multi-column files by detector name) or
    "design:<name>" (a LALSimulation design curve, injections). ``glitch``: gate | error | ignore.
    ``lines``: "keep" (default): the network sees the data as they are; "replace": bins of spectral
    lines that the PSD does not describe, found in the off-source strain (:mod:`dingo_gw.noise.line_bins`),
    hold Gaussian noise in the network's input (the likelihood keeps the data).
    Sampling: ``num_samples`` proposal draws, ``gibbs_iterations``, ``gibbs_chains`` (chains fitting
    the GNPE proxy density; default min(num_samples, 2000)), ``exact_projection`` (no interpolated
    first layer), ``gnpe_init`` ("network": the embedded initialisation network, if any;
    "trigger": arrival times uniform in the trigger time ± ``time_spread`` s). Importance sampling:
    ``workers`` waveform processes, ``num_posterior_samples`` (default round(n_eff)). ``threads``:
    torch threads for network sampling (default 1: with other work on the cores, e.g. the
    waveform processes or other jobs, more threads were 2.5x slower on 2 cores; None: torch's
    default). ``is_parts``: importance sampling in this many parts (default: parts of IS_PART_SIZE
    samples); with ``save_proposal_only`` the analysis stops after network sampling and writes
    ``<label>_proposal.h5`` for part jobs on a cluster (:mod:`dingo_gw.inference.importance.parts`).
    ``target_neff``: draw further proposal batches (of ``num_samples`` network draws, or of
    ``refine_samples`` refined draws when the proposal is refined) until n_eff of all of them together
    reaches it, or ``max_samples`` draws of that proposal in all (default 10 batches) or ``max_time`` s
    since the analysis started are spent; None (default): one batch. ``result_format``: the result
    file, ``<label>_result.hdf5`` ("hdf5", the default) or ``<label>_result.json`` ("json"), bilby's
    formats both.
    """

    event: str | None = None
    gps: float | None = None
    strain_files: dict[str, str] = field(default_factory=dict)
    psd_files: dict[str, str] = field(default_factory=dict)
    injection: str | Mapping | None = None
    network: str | None = None
    chirp_mass: float | None = None
    data_dirs: list[str] = field(default_factory=list)
    outdir: str = "."
    label: str | None = None
    num_samples: int = 20000
    seed: int = 0
    gibbs_iterations: int = DEFAULT_GIBBS_ITERATIONS
    gibbs_chains: int | None = None
    workers: int = 2
    batch_size: int = DEFAULT_BATCH_SIZE
    glitch: str = "gate"
    lines: str = "keep"
    time_spread: float = DEFAULT_TIME_SPREAD
    gnpe_init: str = "network"
    exact_projection: bool = False
    num_posterior_samples: int | None = None
    post_trigger: float | None = None
    progress: bool = True
    corner: bool = True
    threads: int | None = 1
    is_parts: int | None = None
    save_proposal_only: bool = False
    refine: str = "auto"
    refine_efficiency: float = DEFAULT_TARGET_EFFICIENCY
    refine_particles: int = 4000
    refine_passes: int = 1
    refine_samples: int = 200000
    refine_start: str = "network"
    relative_binning: bool = True
    distance_marginalization: bool = True
    target_neff: float | None = None
    max_samples: int | None = None
    max_time: float | None = None
    result_format: str = "hdf5"

    def check(self) -> None:
        given = [x for x in ("event", "injection") if getattr(self, x) is not None]
        if self.strain_files and self.event is None and self.injection is None:
            given.append("strain")
        if len(given) != 1:
            raise ConfigError("give exactly one of --event NAME, --strain DET=FILE (with --gps) or --injection "
                              "(with --strain and --gps: into that real noise)")
        if self.strain_files and self.gps is None and self.event is None:
            raise ConfigError("--strain needs --gps (the trigger time of the data)")
        if self.num_samples < 1:
            raise ConfigError(f"--num-samples must be >= 1, got {self.num_samples}")
        if self.gibbs_iterations < 1:
            raise ConfigError(f"--gibbs-iterations must be >= 1, got {self.gibbs_iterations}")
        if self.workers < 1:
            raise ConfigError(f"--workers must be >= 1, got {self.workers}")
        if self.threads is not None and self.threads < 1:
            raise ConfigError(f"--threads must be >= 1, got {self.threads}")
        if self.gnpe_init not in ("network", "trigger"):
            raise ConfigError(f"GNPE initialisation must be 'network' or 'trigger', got {self.gnpe_init!r}")
        if not self.time_spread > 0:
            raise ConfigError(f"--time-spread must be > 0 s, got {self.time_spread}")
        if self.glitch not in ("gate", "error", "ignore"):
            raise ConfigError(f"glitch action must be gate, error or ignore, got {self.glitch!r}")
        if self.lines not in ("replace", "keep"):
            raise ConfigError(f"lines must be 'replace' or 'keep', got {self.lines!r}")
        if self.gps is not None and not math.isfinite(self.gps):
            raise ConfigError(f"--gps must be a finite GPS time, got {self.gps}")
        if self.is_parts is not None and self.is_parts < 1:
            raise ConfigError(f"--is-parts must be >= 1, got {self.is_parts}")
        if self.refine not in ("auto", "never"):
            raise ConfigError(f"refine must be 'auto' or 'never', got {self.refine!r}")
        if not 0 < self.refine_efficiency <= 1:
            raise ConfigError(f"--refine-efficiency must be in (0, 1], got {self.refine_efficiency}")
        if self.refine_particles < 100:
            raise ConfigError(f"--refine-particles must be >= 100, got {self.refine_particles}")
        if not 1 <= self.refine_passes <= 10:
            raise ConfigError(f"--refine-passes must be in 1..10, got {self.refine_passes}")
        if self.refine_samples < 1000:
            raise ConfigError(f"--refine-samples must be >= 1000, got {self.refine_samples}")
        if self.target_neff is not None and not self.target_neff > 0:
            raise ConfigError(f"--target-neff must be > 0, got {self.target_neff}")
        if self.max_samples is not None and self.max_samples < 1:
            raise ConfigError(f"--max-samples must be >= 1, got {self.max_samples}")
        if self.max_time is not None and not self.max_time > 0:
            raise ConfigError(f"--max-time must be > 0 s, got {self.max_time}")
        if (self.max_samples is not None or self.max_time is not None) and self.target_neff is None:
            raise ConfigError("--max-samples and --max-time are the budget of --target-neff N: give it too")
        if self.target_neff is not None and self.is_parts is not None:
            raise ConfigError("--target-neff does not work with --is-parts (part jobs importance-sample one proposal)")
        if self.result_format not in ("hdf5", "json"):
            raise ConfigError(f"--result-format must be hdf5 or json, got {self.result_format!r}")
        if self.save_proposal_only and self.is_parts is None:
            raise ConfigError("saving the proposal for importance-sampling part jobs needs --is-parts N")


@dataclass
class _Run:
    """What every step of one analysis shares: where, when, with which network, under which label."""

    event: Event | None
    outdir: Path
    network: AnalysisNetwork
    gps: float
    label: str
    post: float
    data_dirs: list | None
    given_strain: dict[str, Path]
    network_selection: dict | None = None


@dataclass
class _Data:
    """The analysed data (step 2-4) with what the result's metadata record about them."""

    event_data: EventData
    psd_info: dict
    extra_meta: dict
    injection_params: dict | None = None


def _seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)


def default_label(settings: AnalysisSettings, event: Event | None, gps: float) -> str:
    if settings.label:
        return settings.label
    if event is not None:
        return event.name
    if settings.injection is not None:
        return "injection"
    return f"GPS{gps:.2f}".replace(".", "_")


def analyze(settings: AnalysisSettings, network: AnalysisNetwork | None = None,
            generator=None) -> AnalysisOutput:
    """Run every step for ``settings``; see the module docstring. Files are written at the end.

    ``network``: an already loaded network (a service keeps it warm; ``settings.network`` is then
    not read); ``generator``: a :class:`~dingo_gw.waveforms.WaveformGenerator` of that network
    (:func:`~dingo_gw.inference.network.network_generator`) whose worker pool is kept open across
    calls (not closed here).
    """
    settings.check()
    with torch_threads(settings.threads):
        return _analyze(settings, network, generator)


def _analyze(settings: AnalysisSettings, network: AnalysisNetwork | None = None, generator=None) -> AnalysisOutput:
    """strain -> PSD/whitening -> network sampling -> importance sampling -> result."""
    timings: dict[str, float] = {}
    t_start = time.perf_counter()
    run = _start_run(settings, network, timings)
    own_generator = generator is None
    if own_generator:
        generator = network_generator(run.network)
    try:
        data = _analysed_data(settings, run, generator, timings)
        with timed_step(timings, "sampling"):
            proposal = sample_proposal(run.network, data.event_data, settings)
            completed = complete_from_prior(proposal, run.network.prior, np.random.default_rng([settings.seed, 3]))
        if settings.save_proposal_only:  # importance sampling runs in part jobs (dingo_gw.inference.importance.parts)
            return _save_proposal(settings, run, data, proposal, completed, timings)
        result = _weighted_result(settings, run, data, proposal, generator, timings, t_start)
    finally:
        if own_generator:
            generator.close()
    return _finish(settings, run, data, proposal, completed, result, timings, t_start)


def _start_run(settings: AnalysisSettings, network: AnalysisNetwork | None, timings: dict) -> _Run:
    """Check the inputs that need no network, seed the generators, load the network (step 1)."""
    data_dirs = settings.data_dirs or None
    event = get_event(settings.event) if settings.event is not None else None
    outdir = prepare_outdir(settings.outdir)
    given_strain = resolve_strain_files(settings.strain_files, data_dirs)
    network_path = selection = None
    if network is None:
        network_path, selection = choose_network(settings.network, event, given_strain, settings.chirp_mass,
                                                 settings.injection is not None, data_dirs, settings.gps)
    _seed_everything(settings.seed)
    with timed_step(timings, "load_network"):
        if network is None:
            network = load_analysis_network(network_path)
    gps = float(settings.gps) if settings.gps is not None else (
        event.gps if event is not None else network.net_input.ref_time)
    label = default_label(settings, event, gps)
    post = post_trigger(network.domain, settings.post_trigger)
    return _Run(event, outdir, network, gps, label, post, data_dirs, given_strain, selection)


def _analysed_data(settings: AnalysisSettings, run: _Run, generator, timings: dict) -> _Data:
    """Steps 2-4: strain, glitches, PSDs and the whitened network input (or a simulated injection)."""
    network, domain, gps = run.network, run.network.domain, run.gps
    if settings.injection is not None and not run.given_strain:
        with timed_step(timings, "psd"):
            psds, psd_info = injection_psds(settings.psd_files, domain, network.detectors, run.data_dirs)
        with timed_step(timings, "data"):
            event_data, params = injection_data(network, settings.injection, gps, generator, psds, settings.seed)
        return _Data(event_data, psd_info, dict(event_data.info), params)
    segment = analysis_segment(gps, domain, run.post)
    with timed_step(timings, "read_strain"):
        paths = strain_paths(run.event, run.given_strain, run.data_dirs, network.detectors)
        strains = read_strain(paths, segment)
        for det, s in strains.items():
            segment_of(s, gps, domain, run.post)  # sampling rate, duration
    with timed_step(timings, "glitches"):
        strains, glitch_report = check_glitches(strains, gps, segment, settings.glitch)
    with timed_step(timings, "psd"):
        psds, psd_info = estimate_psds(strains, domain, segment, settings.psd_files, run.event, run.data_dirs,
                                       network.window_roll_off, network.detectors)
    line_bins, line_report = {}, {"action": "keep"}
    if settings.lines == "replace":
        with timed_step(timings, "lines"):
            for det in network.detectors:
                line_bins[det], line_report[det] = find_line_bins(strains[det], psds[det], domain, segment,
                                                                  network.window_roll_off)
            line_report["action"] = "replace"
    params = None
    with timed_step(timings, "data"):
        if settings.injection is not None:  # into the real noise of the analysis segment
            noise, start, _ = segment_fd(strains, network.detectors, domain, gps, run.post, network.window_roll_off)
            event_data, params = injection_data(network, settings.injection, gps, generator, psds, settings.seed,
                                                noise=noise, line_bins=line_bins)
            event_data.info["injection"]["noise_segment"] = [start, start + domain.duration]
        else:
            event_data = frequency_domain_data(strains, psds, network, gps, run.post, line_bins, settings.seed)
    extra_meta = dict(event_data.info)
    extra_meta["line_bins"] = line_report
    extra_meta["strain_files"] = {d: {"path": str(p), "sha256": sha256_file(p)} for d, p in paths.items()}
    extra_meta["glitches"] = glitch_report
    return _Data(event_data, psd_info, extra_meta, params)


def _save_proposal(settings: AnalysisSettings, run: _Run, data: _Data, proposal: ProposalSamples,
                   completed: list[str], timings: dict) -> AnalysisOutput:
    """Stop after network sampling: ``<label>_proposal.h5`` for importance-sampling part jobs."""
    from dingo_gw.inference.importance.parts import save_proposal

    meta = run_metadata(settings, run, data.psd_info, proposal, completed, data.extra_meta)
    path = save_proposal(run.outdir / f"{run.label}_proposal.h5", proposal, data.event_data, run.network, settings,
                         run.label, meta, data.injection_params, timings)
    return AnalysisOutput(None, proposal, {"proposal": path}, timings, run.label, data.event_data)


def _weighted_result(settings: AnalysisSettings, run: _Run, data: _Data, proposal: ProposalSamples, generator,
                     timings: dict, t_start: float | None = None) -> Result:
    """Step 6: importance sampling of the network proposal, refined when it is weak; with a target n_eff,
    more batches of the (network or refined) proposal. The network proposal's warnings are held while a
    refinement may still replace its result."""
    event_data, prior = data.event_data, run.network.prior
    refine_auto = settings.refine == "auto"
    with timed_step(timings, "importance_sampling"), hold_warnings(
            refine_auto, network_proposal.logger.name, importance_sampling.logger.name) as held:
        likelihood = GaussianLikelihood(event_data.strain, event_data.psds, event_data.domain, generator,
                                        event_data.trigger_time, time_origin=event_data.segment_start)
        result = importance_sample_proposal(
            proposal, prior, likelihood, seed=settings.seed, workers=settings.workers,
            checkpoint_dir=run.outdir / f".{run.label}.checkpoints",
            num_parts=settings.is_parts or max(1, math.ceil(proposal.num_accepted / IS_PART_SIZE)),
            progress=settings.progress, num_posterior_samples=settings.num_posterior_samples,
        )
    deadline = None
    if settings.target_neff is not None and settings.max_time is not None:
        deadline = (time.perf_counter() if t_start is None else t_start) + settings.max_time
    if refine_auto and needs_refinement(result, settings.refine_efficiency):
        with timed_step(timings, "refinement"):
            result = refine_result(result, proposal, prior, likelihood, settings, deadline=deadline)
    elif settings.target_neff is not None:
        with timed_step(timings, "network_batches"):  # sampling and importance sampling of batches 2, 3, ...
            result = _network_batches(settings, run, data, result, likelihood, deadline)
    if result.meta_data.get("refinement", {}).get("status") != "done":
        release_warnings(held)  # the network proposal's result stands, and so do its warnings
    return result


def _batch_seed(seed: int, k: int) -> int:
    """Seed of network batch k >= 1 (batch 0 uses the analysis seed)."""
    return int(np.random.SeedSequence([int(seed), 41, int(k)]).generate_state(1)[0])


def _network_batches(settings: AnalysisSettings, run: _Run, data: _Data, first: Result, likelihood,
                     deadline: float | None) -> Result:
    """``settings.target_neff``: further batches of ``num_samples`` network draws (each sampled and
    importance-sampled as the first, with seeds from :func:`_batch_seed`, checkpointed in their own folder)
    until the n_eff of all together reaches the target or the budget is spent; one combined Result."""
    import dataclasses

    budget = DrawBudget(settings.target_neff, settings.num_samples, settings.max_samples, deadline, settings.max_time)
    results = [first]
    draws = lambda: sum(r.num_samples for r in results)  # noqa: E731
    combined = first
    while (stop := budget.stop_reason(float(combined.meta_data.get("n_eff", 0.0) or 0.0), draws())) is None:
        k = len(results)
        seed = _batch_seed(settings.seed, k)
        batch_settings = dataclasses.replace(settings, seed=seed, num_samples=budget.next_batch(draws()))
        proposal = sample_proposal(run.network, data.event_data, batch_settings)
        complete_from_prior(proposal, run.network.prior, np.random.default_rng([seed, 3]))
        results.append(importance_sample_proposal(
            proposal, run.network.prior, likelihood, seed=seed, workers=settings.workers,
            checkpoint_dir=run.outdir / f".{run.label}.checkpoints" / f"batch_{k:04d}",
            num_parts=max(1, math.ceil(proposal.num_accepted / IS_PART_SIZE)), progress=settings.progress,
            num_posterior_samples=settings.num_posterior_samples))
        combined = combine_batches(results, run.network.prior, likelihood.trigger_time, seed=settings.seed,
                                   num_posterior_samples=settings.num_posterior_samples)
    combined.meta_data.update(budget.record(stop, len(results), draws(), "network"))
    return combined


def _finish(settings: AnalysisSettings, run: _Run, data: _Data, proposal: ProposalSamples, completed: list[str],
            result: Result, timings: dict, t_start: float) -> AnalysisOutput:
    """Step 7: metadata, then the result files; the checkpoints are removed (no resume needed)."""
    if data.injection_params is not None:
        inj = dict(data.injection_params)
        inj["geocent_time"] = inj["geocent_time"] + run.gps
        result.injection_parameters = inj
    meta = result.meta_data
    meta.update(run_metadata(settings, run, data.psd_info, proposal, completed, data.extra_meta))
    meta["timings"] = dict(timings, total=time.perf_counter() - t_start)  # before writing the files
    with timed_step(timings, "write"):
        files = write_outputs(result, run.outdir, run.label, corner=settings.corner,
                              result_format=settings.result_format)
    shutil.rmtree(run.outdir / f".{run.label}.checkpoints", ignore_errors=True)
    timings["total"] = time.perf_counter() - t_start
    return AnalysisOutput(result, proposal, files, timings, run.label, data.event_data)


def run_metadata(settings: AnalysisSettings, run: _Run, psd_info: dict, proposal: ProposalSamples,
                 completed: list[str], extra_meta: dict) -> dict:
    """What the result's meta_data record about the run besides the importance-sampling numbers."""
    network = run.network
    return {
        "label": run.label, "event": run.event.name if run.event is not None else None, "trigger_time": run.gps,
        "detectors": network.detectors, "network": {"path": str(network.path), "sha256": network.sha256},
        "network_selection": run.network_selection,
        "psd": psd_info, "sampler": {k: v for k, v in proposal.info.items() if k != "gibbs_trace"},
        "gibbs_trace": proposal.info.get("gibbs_trace"), "completed_from_prior": completed,
        "seed": settings.seed, "num_samples_requested": settings.num_samples,
        "waveform": network.waveform, "domain": network.domain.to_dict(), **extra_meta,
    }
