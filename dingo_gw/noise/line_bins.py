"""Frequency bins where the data are much louder than the analysis PSD says: spectral lines.

A published PSD (GWTC-1's BayesWave medians, 1/8 Hz resolution) draws the calibration lines
(H1 35.9-37.3 Hz, L1 33-35 Hz and 331.9 Hz), the 60 Hz mains and the ~500 Hz violin modes as
narrow peaks. The Tukey-windowed analysis segment of T = 1/Δf seconds spreads their power over
neighbouring bins, where the whitened data then have a variance up to ~25 instead of 1: a few
dozen bins that a network trained on Gaussian noise has never seen, and that cost its proposal
most of its sample efficiency on real data (docs/network_quality.md, "Real noise").

The lines are found in off-source data only (never in the analysis segment, so a signal cannot
flag itself): the mean-averaged Welch periodogram of the off-source segments of T (same window
as the analysis; segments touching glitches or the analysis segment left out) divided by the
analysis PSD is the mean whitened power per bin; a bin is a line bin where it exceeds
:data:`LINE_THRESHOLD` = 3, or for few segments the level that Gaussian noise described by the PSD
(mean of K Exp(1) variables, Gamma(K, 1/K)) exceeds in :data:`FALSE_ALARM` = 1e-3 of the bins
(K = 3: 3.74, K = 4: 3.27; K >= 5: 3, which noise exceeds in 9e-4 (K = 5) to 2e-5 (K = 9) of the bins).

What the analysis does with them (``dingo_analyze --lines replace``;
:func:`dingo_gw.inference.event_data.frequency_domain_data`): in the network's input only, the line bins of the analysis segment are replaced by Gaussian noise
of the PSD's level; the likelihood (importance sampling, refinement) keeps the data as they are,
so the posterior is unchanged and only the proposal improves.
"""

from __future__ import annotations

import logging

import numpy as np

from dingo_gw.domain import FrequencyDomain
from dingo_gw.errors import DataError
from dingo_gw.io.strain import Strain

logger = logging.getLogger(__name__)

#: A bin is a line bin where the off-source mean whitened power exceeds this (1 for Gaussian noise).
LINE_THRESHOLD = 3.0
#: Fewest off-source segments of T for a search; with fewer no bin is flagged.
MIN_OFFSOURCE_SEGMENTS = 3
#: Largest share of bins that Gaussian noise may flag (sets the threshold for few segments).
FALSE_ALARM = 1e-3


def find_line_bins(strain: Strain, psd: np.ndarray, domain: FrequencyDomain, segment: tuple[float, float],
                   roll_off: float | None, threshold: float = LINE_THRESHOLD) -> tuple[np.ndarray, dict]:
    """(mask over the domain's full grid, report) of the line bins of one detector.

    ``psd``: the analysis PSD (1/Hz, full grid); ``segment``: the analysis segment (GPS s),
    left out; ``roll_off``: the analysis window's Tukey roll-off (s); ``threshold``: the lowest
    threshold (see the module docstring). The report gives the number of off-source segments,
    the threshold used, the number of bins and their frequencies (Hz)
    as [start, end] ranges; with too little off-source data the mask is empty and the report says why.
    """
    from dingo_gw.noise.psd import estimate_psd_report

    mask = np.zeros(len(domain), dtype=bool)
    report = {"threshold": float(threshold), "segments": 0, "bins": 0, "frequencies": []}
    try:
        est = estimate_psd_report(strain, domain, exclude=segment, roll_off=roll_off if roll_off else 0.0,
                                  segment_duration=domain.duration, average="mean",
                                  min_segments=MIN_OFFSOURCE_SEGMENTS)
    except DataError as e:
        report["skipped"] = str(e)
        logger.info("%s: no line search (%s)", strain.detector, e)
        return mask, report
    from scipy.stats import gamma

    k = int(est.num_segments)
    threshold = max(float(threshold), float(gamma.isf(FALSE_ALARM, k, scale=1.0 / k)))
    band = domain.mask
    ratio = np.zeros(len(domain))
    ratio[band] = est.psd[band] / np.asarray(psd, dtype=float)[band]
    mask[band] = ratio[band] > threshold
    report.update(segments=k, threshold=round(threshold, 3), bins=int(mask.sum()),
                  frequencies=_ranges(domain.frequencies[mask], domain.delta_f),
                  max_power=round(float(ratio[band].max()), 2))
    return mask, report


def _ranges(freqs: np.ndarray, delta_f: float) -> list[list[float]]:
    """Runs of adjacent frequencies as [first, last] pairs (Hz)."""
    out: list[list[float]] = []
    for f in np.asarray(freqs, dtype=float):
        if out and f - out[-1][1] <= 1.5 * delta_f:
            out[-1][1] = float(f)
        else:
            out.append([float(f), float(f)])
    return out
