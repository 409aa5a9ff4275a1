"""What an analysis returns and writes: :class:`AnalysisOutput`, the result file and corner plot
(``<label>_result.json`` or ``<label>_failed_proposal.json``, ``<label>_corner.png``, each moved
into the output folder complete) and the printed summary."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dingo_gw.inference.event_data import EventData
from dingo_gw.inference.sampling.gnpe_sampler import ProposalSamples
from dingo_gw.io.atomic import prepare_outdir
from dingo_gw.results import Result


@dataclass
class AnalysisOutput:
    """What :func:`analyze` produced: the result, the proposal, the files written, timings (s), and the
    analysed data (FD strain, PSDs, whitened network input). ``result`` is None when only the proposal
    was saved (``save_proposal_only``; ``files["proposal"]``)."""

    result: Result | None
    proposal: ProposalSamples
    files: dict[str, Path]
    timings: dict[str, float]
    label: str
    event_data: "EventData | None" = None


def write_outputs(result: Result, outdir: Path, label: str, corner: bool = True) -> dict[str, Path]:
    """Write the result file and the corner plot into a staging folder, then move both into
    ``outdir`` (each file appears complete; nothing is left behind on failure)."""
    from dingo_gw.plots import corner_plot
    from dingo_gw.results import add_derived_parameters

    outdir = prepare_outdir(outdir)
    staging = outdir / f".{label}.staging"
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir()
    files = {}
    try:
        path = result.save(staging, label)
        files["result"] = path
        if corner:
            title = f"{label}: n_eff = {result.n_eff:.0f}, efficiency = {100 * result.sample_efficiency:.2f} %"
            if not result.ok:
                title = f"{label}: FAILED PROPOSAL (network samples only)"
            weights = result.weights if result.ok else np.zeros(result.num_samples)  # no posterior to show
            with np.errstate(invalid="ignore", divide="ignore"):  # derived masses of rejected samples
                derived = add_derived_parameters(result.samples)
            refined = (result.meta_data.get("refinement") or {}).get("status") == "done"
            files["corner"] = corner_plot(derived, weights, staging / f"{label}_corner.png", title=title,
                                          proposal_label="refined proposal" if refined else "network proposal")
        final = {}
        for key, p in files.items():
            target = outdir / p.name
            os.replace(p, target)
            final[key] = target
        return final
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def summary_text(out: AnalysisOutput) -> str:
    """The printed summary: table of medians and 90 % intervals, timings, files."""
    lines = [out.result.summary_table()]
    meta = out.result.meta_data
    rejected = meta.get("num_rejected_proposals", 0)
    if rejected:
        lines.append(f"{rejected} of {meta.get('num_network_samples')} network samples rejected before importance "
                     f"sampling (weight zero: {meta.get('num_outside_prior', 0)} outside the prior, the others outside "
                     "the GNPE kernel or the network's ra range)")
    lines.append("timings [s]: " + ", ".join(f"{k} {v:.1f}" for k, v in out.timings.items()))
    for kind, path in out.files.items():
        lines.append(f"{kind}: {path}")
    return "\n".join(lines)
