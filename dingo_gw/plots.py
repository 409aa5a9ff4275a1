"""Diagnostic figures (matplotlib Agg, written atomically as PNG).

- :func:`corner_plot`: network proposal vs importance-reweighted posterior;
- :func:`weights_plot`: distribution and concentration of the importance weights.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from dingo_gw.errors import DataError
from dingo_gw.io.atomic import atomic_write

#: Parameters shown by default in the corner plot (those present in the samples).
CORNER_PARAMETERS = (
    "chirp_mass", "mass_ratio", "chi_eff", "luminosity_distance", "theta_jn", "ra", "dec", "psi", "geocent_time",
)

LABELS = {
    "chirp_mass": r"$\mathcal{M}$ [M$_\odot$]", "mass_ratio": "$q$", "mass_1": r"$m_1$ [M$_\odot$]",
    "mass_2": r"$m_2$ [M$_\odot$]", "chi_eff": r"$\chi_\mathrm{eff}$", "a_1": "$a_1$", "a_2": "$a_2$",
    "tilt_1": r"$\theta_1$", "tilt_2": r"$\theta_2$", "phi_12": r"$\phi_{12}$", "phi_jl": r"$\phi_{JL}$",
    "theta_jn": r"$\theta_{JN}$", "phase": r"$\phi$", "luminosity_distance": "$d_L$ [Mpc]", "ra": r"$\alpha$",
    "dec": r"$\delta$", "psi": r"$\psi$", "geocent_time": "$t_c$ [s]",
}


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: str | Path) -> Path:
    path = Path(path)
    with atomic_write(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    return path


def corner_plot(
    samples: Mapping[str, np.ndarray],
    weights: np.ndarray,
    path: str | Path,
    parameters: Sequence[str] | None = None,
    title: str | None = None,
    proposal_label: str = "network proposal",
) -> Path:
    """Corner plot of proposal samples (grey, unweighted, legend ``proposal_label``) and the
    reweighted posterior (blue).

    ``samples`` are the importance-sampling draws (e.g. ``Result.samples`` after
    :func:`dingo_gw.results.add_derived_parameters`), ``weights`` their normalised weights.
    Parameters without spread are skipped; geocent_time is shown relative to its median second.
    """
    import corner

    plt = _pyplot()
    names = [p for p in (parameters or CORNER_PARAMETERS) if p in samples]
    weights = np.asarray(weights, dtype=float)
    if not names:
        raise DataError(f"corner plot: none of the parameters {list(parameters or CORNER_PARAMETERS)} are in the samples")
    cols, labels = [], []
    for name in names:
        x = np.asarray(samples[name], dtype=float)
        label = LABELS.get(name, name)
        if name == "geocent_time":
            ref = float(np.floor(np.nanmedian(x)))
            x = x - ref
            label = f"$t_c - {ref:.0f}$ [s]"
        if len(x) != len(weights):
            raise DataError(f"corner plot: {len(x)} values of {name} but {len(weights)} weights")
        if not np.ptp(x[np.isfinite(x)]) > 0:
            continue
        cols.append(x)
        labels.append(label)
    if not cols:
        raise DataError("corner plot: no parameter varies across the samples")
    data = np.column_stack(cols)
    keep = np.all(np.isfinite(data), axis=1)
    data, w = data[keep], weights[keep]
    ranges = [tuple(np.quantile(c, [0.0005, 0.9995])) for c in data.T]
    ranges = [(lo, hi) if hi > lo else (lo - 0.5, hi + 0.5) for lo, hi in ranges]
    kwargs = dict(labels=labels, range=ranges, bins=30, smooth=0.9, plot_datapoints=False, plot_density=False,
                  levels=(0.5, 0.9), label_kwargs={"fontsize": 12})
    fig = corner.corner(data, color="grey", hist_kwargs={"density": True}, **kwargs)
    if w.sum() > 0:
        corner.corner(data, weights=w, fig=fig, color="tab:blue", hist_kwargs={"density": True}, **kwargs)
    handles = [plt.Line2D([], [], color="grey", label=proposal_label),
               plt.Line2D([], [], color="tab:blue", label="importance-reweighted")]
    fig.legend(handles=handles, loc="upper right", fontsize=14, frameon=False)
    if title:
        fig.suptitle(title, fontsize=14)
    try:
        return _save(fig, path)
    finally:
        plt.close(fig)


def weights_plot(log_weights: np.ndarray, path: str | Path, title: str | None = None) -> Path:
    """Histogram of n·w_i (normalised weights) and the fraction of the total weight held by the
    largest weights; n_eff and the sample efficiency in the title."""
    from dingo_gw.results import effective_sample_size, normalized_weights

    plt = _pyplot()
    lw = np.asarray(log_weights, dtype=float)
    n = len(lw)
    w = normalized_weights(lw)
    n_eff = effective_sample_size(lw)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    pos = w[w > 0] * n
    if pos.size:
        bins = np.logspace(np.log10(pos.min()), np.log10(pos.max()) + 1e-9, 50)
        ax1.hist(pos, bins=bins, color="tab:blue")
        ax1.set_xscale("log")
    ax1.set_xlabel(r"$n\,w_i$ (normalised weight × number of samples)")
    ax1.set_ylabel("samples")
    ax1.set_title(f"{n - pos.size} of {n} weights are zero", fontsize=10)
    ranked = np.cumsum(np.sort(w)[::-1])
    ax2.plot(np.arange(1, n + 1), ranked, color="tab:blue")
    ax2.axvline(n_eff, color="k", ls="--", label=f"n_eff = {n_eff:.0f}")
    ax2.set_xscale("log")
    ax2.set_xlabel("number of largest weights")
    ax2.set_ylabel("fraction of total weight")
    ax2.legend(frameon=False)
    fig.suptitle(title or f"importance weights: n_eff = {n_eff:.1f}, sample efficiency = {100 * n_eff / max(n, 1):.2f} %")
    fig.tight_layout()
    try:
        return _save(fig, path)
    finally:
        plt.close(fig)
