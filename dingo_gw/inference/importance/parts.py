"""Importance sampling in N parallel parts (cluster jobs), then one merge.

    dingo_analyze --event GW150914 --outdir run --is-parts 8        # network sampling only: run/GW150914_proposal.h5
    dingo_analyze --proposal run/GW150914_proposal.h5 --is-part K   # K = 1..8, one job each: run/GW150914_is_parts/
    dingo_result merge run/GW150914_is_parts/*.h5                   # run/GW150914_result.hdf5 + corner plot

The proposal file holds everything the part jobs and the merge need, so they do not read the
network or the strain again: the proposal samples with log q and acceptance, the FD strain and
PSDs of the analysis (exact float64/complex128 copies), the domain, trigger time and segment
start, the waveform model, the prior (bilby strings from the network), the seed and the number of
parts, and the run's metadata. Part K computes exactly part K of
:func:`dingo_gw.inference.importance.importance_sampling.importance_sample` (same rows, random numbers from
``default_rng([seed, K - 1])``); the merge checks each part's fingerprint and runs the same code
as a single ``dingo_analyze`` with ``is_parts = N`` and the same seed, so the merged result is
identical to it (weights, evidence, n_eff, resampled posterior).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from dingo_gw.domain import FrequencyDomain
from dingo_gw.errors import ConfigError, DataError, FileFormatError
from dingo_gw.inference.sampling.gnpe_sampler import ProposalSamples
from dingo_gw.io.atomic import atomic_write, h5_writer
from dingo_gw.io.hdf5 import open_h5, read_json_attr, stamp, write_json_attr

logger = logging.getLogger(__name__)

KIND = "analysis_proposal"

#: Network metadata keys that define the prior (see dingo_gw.inference.network.network_prior).
_PRIOR_KEYS = ("prior", "intrinsic_prior", "extrinsic_prior")


@dataclass
class SavedProposal:
    """An analysis stopped after network sampling (``<label>_proposal.h5``); see the module docstring.

    ``strain``/``psds``: detector -> FD strain (dt·rfft, 1/Hz) / PSD (1/Hz) on ``data_domain``'s
    full grid; ``trigger_time`` and ``segment_start`` in GPS s; ``waveform``: approximant, f_ref,
    f_start (Hz) on ``network_domain``; ``prior_spec``: bilby prior strings; ``meta``: the
    result's run metadata; ``injection_parameters``: bilby names, geocent_time relative to the
    trigger (injections only).
    """

    path: Path
    label: str
    outdir: Path
    seed: int
    num_parts: int
    num_posterior_samples: int | None
    corner: bool
    proposal: ProposalSamples
    strain: dict[str, np.ndarray]
    psds: dict[str, np.ndarray]
    data_domain: FrequencyDomain
    network_domain: FrequencyDomain
    trigger_time: float
    segment_start: float
    waveform: dict
    prior_spec: dict
    meta: dict = field(default_factory=dict)
    injection_parameters: dict | None = None
    timings: dict = field(default_factory=dict)
    sha256: str = ""
    result_format: str = "hdf5"

    def prior(self):
        """The network's bilby PriorDict."""
        from dingo_gw.inference.network import network_prior

        return network_prior(self.prior_spec, str(self.path))

    def generator(self):
        """The LALSimulation waveform generator of the analysis (close it after use)."""
        from dingo_gw.waveforms import WaveformGenerator

        w = self.waveform
        return WaveformGenerator(w["approximant"], self.network_domain, float(w["f_ref"]), w.get("f_start"))

    def likelihood(self, generator):
        """The analysis's Gaussian likelihood (same data, PSDs, domain and times as the single run)."""
        from dingo_gw.likelihood.gaussian import GaussianLikelihood

        return GaussianLikelihood(self.strain, self.psds, self.data_domain, generator, self.trigger_time,
                                  time_origin=self.segment_start)

    def accepted(self, prior) -> np.ndarray:
        """Samples that are importance-sampled (as in importance_sample_proposal): accepted by the
        sampler and inside the prior's support."""
        from dingo_gw.inference.importance.importance_sampling import prior_support

        return np.asarray(self.proposal.accepted, dtype=bool) & prior_support(self.proposal.samples, prior)

    def part_path(self, index: int) -> Path:
        """Default file of part ``index`` (1-based): ``<proposal folder>/<label>_is_parts/part_K_of_N.h5``."""
        return self.path.parent / f"{self.label}_is_parts" / f"part_{index}_of_{self.num_parts}.h5"


def save_proposal(path: str | Path, proposal: ProposalSamples, event_data, network, settings, label: str,
                  meta: dict, injection_parameters: dict | None, timings: dict) -> Path:
    """Write the proposal file of an analysis (called by ``analyze`` with ``save_proposal_only``)."""
    import h5py

    path = Path(path)
    info = {
        "label": label, "outdir": str(Path(settings.outdir).expanduser().resolve()), "seed": int(settings.seed),
        "num_parts": int(settings.is_parts), "num_posterior_samples": settings.num_posterior_samples,
        "corner": bool(settings.corner), "data_domain": event_data.domain.to_dict(),
        "network_domain": network.domain.to_dict(), "trigger_time": float(event_data.trigger_time),
        "segment_start": float(event_data.segment_start), "waveform": dict(network.waveform),
        "prior_spec": {k: network.metadata[k] for k in _PRIOR_KEYS if network.metadata.get(k)},
        "detectors": list(event_data.strain), "meta": meta, "injection_parameters": injection_parameters,
        "timings": dict(timings), "result_format": getattr(settings, "result_format", "hdf5"),
    }
    with atomic_write(path) as tmp:
        with h5_writer(tmp) as f:
            stamp(f, KIND)
            write_json_attr(f, "analysis", info)
            g = f.create_group("proposal")
            s = g.create_group("samples")
            for k, v in proposal.samples.items():
                s.create_dataset(k, data=np.asarray(v, dtype=float))
            g.create_dataset("log_prob", data=np.asarray(proposal.log_prob, dtype=float))
            g.create_dataset("accepted", data=np.asarray(proposal.accepted, dtype=bool))
            if proposal.proxies is not None:
                g.create_dataset("proxies", data=np.asarray(proposal.proxies, dtype=float))
            for det in event_data.strain:
                f.create_dataset(f"data/strain/{det}", data=np.asarray(event_data.strain[det], dtype=np.complex128))
                f.create_dataset(f"data/psd/{det}", data=np.asarray(event_data.psds[det], dtype=np.float64))
    return path


def load_proposal(path: str | Path) -> SavedProposal:
    """Read a proposal file; FileFormatError if missing, corrupt or not a proposal file."""
    from dingo_gw.io.checksum import sha256_file

    path = Path(path)
    with open_h5(path, KIND) as f:
        try:
            a = read_json_attr(f, "analysis")
            g = f["proposal"]
            proposal = ProposalSamples(
                samples={k: g["samples"][k][()] for k in g["samples"]}, log_prob=g["log_prob"][()],
                accepted=g["accepted"][()], info=dict(a["meta"].get("sampler") or {}),
                proxies=g["proxies"][()] if "proxies" in g else None,
            )
            strain = {d: f[f"data/strain/{d}"][()] for d in a["detectors"]}
            psds = {d: f[f"data/psd/{d}"][()] for d in a["detectors"]}
            saved = SavedProposal(
                path=path, label=a["label"], outdir=Path(a["outdir"]), seed=int(a["seed"]),
                num_parts=int(a["num_parts"]), num_posterior_samples=a["num_posterior_samples"],
                corner=bool(a["corner"]), proposal=proposal, strain=strain, psds=psds,
                data_domain=FrequencyDomain.from_dict(a["data_domain"]),
                network_domain=FrequencyDomain.from_dict(a["network_domain"]),
                trigger_time=float(a["trigger_time"]), segment_start=float(a["segment_start"]),
                waveform=dict(a["waveform"]), prior_spec=dict(a["prior_spec"]), meta=dict(a["meta"]),
                injection_parameters=a["injection_parameters"], timings=dict(a["timings"]),
                result_format=str(a.get("result_format", "hdf5")),
            )
        except (KeyError, TypeError, ValueError, OSError) as e:
            raise FileFormatError(f"{path} is not a complete proposal file: {e}") from None
    saved.sha256 = sha256_file(path)
    return saved


def run_part(proposal_path: str | Path, index: int, out: str | Path | None = None, workers: int = 1,
             progress: bool = True) -> Path | None:
    """Compute part ``index`` (1-based) of the proposal file's importance sampling into ``out``
    (default :meth:`SavedProposal.part_path`); an existing complete part file is kept. Returns the
    part file, or None when there is nothing to compute (the proposal already failed: no accepted
    sample or non-finite log q; ``dingo_result merge --proposal`` then writes the failure report)."""
    from dingo_gw.inference.importance.importance_sampling import check_proposal, evaluate_part

    saved = load_proposal(proposal_path)
    if not 1 <= index <= saved.num_parts:
        raise ConfigError(f"--is-part must be 1..{saved.num_parts} for {saved.path}, got {index}")
    prior = saved.prior()
    acc = saved.accepted(prior)
    samples, log_prob = saved.proposal.subset(acc), np.asarray(saved.proposal.log_prob, dtype=float)[acc]
    reason = "no proposal sample can carry weight" if not acc.any() else check_proposal(samples, log_prob)
    if reason:
        logger.warning("nothing to compute for part %d/%d: %s", index, saved.num_parts, reason)
        return None
    out = Path(out) if out is not None else saved.part_path(index)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DataError(f"cannot create folder {out.parent}: {e.strerror or e}") from None
    info = {"index": index, "num_parts": saved.num_parts, "label": saved.label,
            "proposal": str(saved.path.resolve()), "proposal_sha256": saved.sha256}
    generator = saved.generator()
    try:
        evaluate_part(samples, log_prob, prior, saved.likelihood(generator), saved.seed, index - 1,
                      saved.num_parts, path=out, workers=workers, progress=progress, info=info)
    finally:
        generator.close()
    return out


def merge_parts(part_paths: Sequence[str | Path], proposal_path: str | Path | None = None,
                outdir: str | Path | None = None, label: str | None = None, corner: bool | None = None,
                result_format: str | None = None):
    """Merge the part files of one proposal into the analysis result and write it (and the corner
    plot) like ``dingo_analyze``: into ``outdir``/``label`` as ``result_format`` (hdf5 or json; default:
    those of the analysis).
    The proposal file is ``proposal_path`` or the one the parts name. Returns an AnalysisOutput."""
    from dingo_gw.inference.importance.network_proposal import importance_sample_proposal
    from dingo_gw.inference.outputs import AnalysisOutput, write_outputs
    from dingo_gw.inference.importance.importance_sampling import read_part_info

    t0 = time.perf_counter()
    infos = [(Path(p), read_part_info(p)) for p in part_paths]
    if proposal_path is None:
        named = {i.get("proposal") for _, i in infos}
        if not infos:
            raise ConfigError("give the part files, or --proposal FILE when the proposal failed before any part")
        if None in named or len(named) != 1:
            raise DataError("the part files do not name one common proposal file; pass --proposal FILE")
        proposal_path = named.pop()
    saved = load_proposal(proposal_path)
    files: dict[int, Path] = {}
    for path, info in infos:
        if info.get("proposal_sha256") != saved.sha256:
            raise DataError(f"{path} was computed from another proposal than {saved.path}")
        k = int(info["index"])
        if k in files:
            raise DataError(f"part {k}/{saved.num_parts} given twice: {files[k]} and {path}")
        files[k] = path
    generator = saved.generator()
    try:
        result = importance_sample_proposal(
            saved.proposal, saved.prior(), saved.likelihood(generator), seed=saved.seed, num_parts=saved.num_parts,
            num_posterior_samples=saved.num_posterior_samples, part_files={k - 1: p for k, p in files.items()},
        )
    finally:
        generator.close()
    if saved.injection_parameters is not None:
        inj = dict(saved.injection_parameters)
        inj["geocent_time"] = inj["geocent_time"] + saved.trigger_time
        result.injection_parameters = inj
    label = label or saved.label
    timings = dict(saved.timings, merge=time.perf_counter() - t0)
    result.meta_data.update(saved.meta)
    result.meta_data.update({"label": label, "timings": timings,
                             "importance_sampling_parts": {"num_parts": saved.num_parts,
                                                           "proposal": str(saved.path)}})
    written = write_outputs(result, Path(outdir) if outdir is not None else saved.outdir, label,
                            corner=saved.corner if corner is None else corner,
                            result_format=result_format or saved.result_format)
    return AnalysisOutput(result, saved.proposal, written, timings, label)
