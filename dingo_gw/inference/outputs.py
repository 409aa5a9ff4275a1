"""What an analysis returns and writes: :class:`AnalysisOutput`, the result file and corner plot
(``<label>_result.hdf5`` -- or ``.json`` with ``result_format="json"`` -- or
``<label>_failed_proposal.json``, ``<label>_corner.png``, each moved into the output folder
complete) and the printed summary."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dingo_gw.inference.event_data import EventData
from dingo_gw.inference.sampling.gnpe_sampler import ProposalSamples
from dingo_gw.io.atomic import prepare_outdir
from dingo_gw.results import DEFAULT_RESULT_FORMAT, Result


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


def write_outputs(result: Result, outdir: Path, label: str, corner: bool = True,
                  result_format: str = DEFAULT_RESULT_FORMAT) -> dict[str, Path]:
    """Write the result file (``result_format``: hdf5 or json, bilby's formats both) and the corner
    plot into a staging folder, then move both into ``outdir`` (each file appears complete; nothing
    is left behind on failure)."""
    from dingo_gw.plots import corner_plot
    from dingo_gw.results import add_derived_parameters

    outdir = prepare_outdir(outdir)
    staging = outdir / f".{label}.staging"
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir()
    files = {}
    try:
        path = result.save(staging, label, extension=result_format)
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
    chosen = meta.get("network_selection") or {}
    if chosen.get("name"):
        lines.append(f"network: {chosen['name']} ({chosen.get('reason', '')})")
    rejected = meta.get("num_rejected_proposals", 0)
    if rejected:
        lines.append(f"{rejected} of {meta.get('num_network_samples')} network samples rejected before importance "
                     f"sampling (weight zero: {meta.get('num_outside_prior', 0)} outside the prior, the others outside "
                     "the GNPE kernel or the network's ra range)")
    if out.result.ok and meta.get("evidence_reliable") is False:
        k_hat = meta.get("pareto_k")
        lines.append("evidence estimate unreliable: the weights are heavy-tailed (Pareto k = "
                     + (f"{k_hat:.2f}" if isinstance(k_hat, (int, float)) else str(k_hat))
                     + " > 0.7), so log Z and its error (from independent batches) may be off")
    if meta.get("stop_reason"):
        info = meta.get("target_neff") or {}
        why = {"target_neff": f"n_eff reached the target {info.get('target', float('nan')):g}",
               "max_samples": f"the budget of {info.get('max_samples')} draws was spent before n_eff reached "
                              f"{info.get('target', float('nan')):g}",
               "max_time": f"the time budget of {info.get('max_time')} s was spent before n_eff reached "
                           f"{info.get('target', float('nan')):g}"}.get(meta["stop_reason"], meta["stop_reason"])
        lines.append(f"{meta.get('num_batches')} batch(es), {info.get('num_draws')} draws of the "
                     f"{info.get('proposal', '')} proposal; stopped ({meta['stop_reason']}): {why}")
    lines.append("timings [s]: " + ", ".join(f"{k} {v:.1f}" for k, v in out.timings.items()))
    for kind, path in out.files.items():
        lines.append(f"{kind}: {path}")
    return "\n".join(lines)
