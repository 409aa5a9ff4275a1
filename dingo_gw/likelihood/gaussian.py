"""Stationary Gaussian likelihood of frequency-domain strain, vectorised over samples.

    log L(θ) = -1/2 Σ_I <d_I - h_I(θ), d_I - h_I(θ)>,   <a, b> = 4 Δf Re Σ_f a* b / (w S_I)

summed over the analysis band f_min <= f <= f_max of the domain, with S_I the one-sided PSD of
detector I and w the domain's window factor (windowed data have noise variance w S / (4 Δf) per
real and imaginary part, see :mod:`dingo_gw.domain`). No further constant is added, so log L and
:meth:`GaussianLikelihood.log_noise_evidence` equal bilby's
``GravitationalWaveTransient.log_likelihood()`` and ``.noise_log_likelihood()`` (for w = 1; for
w < 1 they equal bilby with ``BILBY_INCORRECT_PSD_NORMALIZATION=TRUE``, i.e. a PSD of the
unwindowed noise).

The detector response is bilby's: h_I = (F+ h+ + Fx hx) exp(-2πi f (t_c - t_0 + Δt_I)), with
antenna patterns and the geocentre delay Δt_I evaluated at the sample's GPS time
t_c = trigger_time + geocent_time, and t_0 the GPS time of the data's time origin.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np

from dingo_gw.domain import FrequencyDomain
from dingo_gw.errors import DataError, DomainMismatchError
from dingo_gw.likelihood.response import NumpyDetectorNetwork

#: Parameters the detector projection needs (besides the waveform generator's own).
EXTRINSIC_KEYS = ("ra", "dec", "psi", "geocent_time")


class GaussianLikelihood:
    """Exact Gaussian likelihood for a network of detectors on a :class:`FrequencyDomain`.

    Parameters
    ----------
    data
        Detector name -> complex FD strain (dt * rfft, 1/Hz) on ``domain.frequencies``.
    psds
        Detector name -> one-sided PSD (1/Hz) on ``domain.frequencies``; positive and finite in
        the band.
    domain
        The frequency grid; its ``window_factor`` scales the noise level.
    waveform_generator
        Object with ``generate_batch(params, workers=1, progress=False) -> (h_plus, h_cross,
        failed_mask)`` returning polarisations (n, len(domain)) equal to bilby's
        ``lal_binary_black_hole`` for the given ``luminosity_distance`` and zero time shift
        (e.g. :class:`dingo_gw.waveforms.generator.WaveformGenerator`).
    trigger_time
        GPS time (s). Sample parameters ``geocent_time`` are seconds relative to it (as in
        the project's prior).
    time_origin
        GPS time (s) of t = 0 of the data's Fourier transform (bilby's ``start_time``, the
        first sample of the segment). Default: ``trigger_time`` (data already time-shifted to the
        trigger, as fed to the network).
    """

    def __init__(
        self,
        data: Mapping[str, np.ndarray],
        psds: Mapping[str, np.ndarray],
        domain: FrequencyDomain,
        waveform_generator,
        trigger_time: float,
        time_origin: float | None = None,
    ):
        if not data:
            raise DataError("likelihood: no detector data given")
        if set(data) != set(psds):
            raise DataError(
                f"likelihood: data for detectors {sorted(data)} but PSDs for {sorted(psds)}"
            )
        self.domain = domain
        self.waveform_generator = waveform_generator
        if getattr(waveform_generator, "domain", None) is not None:
            domain.check_same_grid(waveform_generator.domain, "waveform generator")
        self.detectors = tuple(data)
        self.trigger_time = float(trigger_time)
        self.time_origin = self.trigger_time if time_origin is None else float(time_origin)
        # Offset (s) between the trigger and the data's time origin; small, exact in float64.
        self._offset = self.trigger_time - self.time_origin
        self._band = domain.mask.copy()
        self._f = domain.frequencies[self._band]
        self._weights = {}  # 4 Δf / (w S) in the band
        self._weights_re_im = {}  # the same, repeated for the (re, im) float view of complex arrays
        self._ramp_buffer = None
        self._dconj_w = {}  # conj(d) * 4 Δf / (w S) in the band
        self.network = NumpyDetectorNetwork(self.detectors, self.trigger_time)
        dd = 0.0
        for det in self.detectors:
            d = _check_array(data[det], len(domain), f"strain of {det}", complex)
            s = _check_array(psds[det], len(domain), f"PSD of {det}", float)
            d, s = d[self._band], s[self._band]
            if not np.all(np.isfinite(d)):
                raise DataError(f"likelihood: strain of {det} has non-finite values in the band")
            if not (np.all(np.isfinite(s)) and np.all(s > 0)):
                raise DataError(f"likelihood: PSD of {det} is not positive and finite in the band")
            w = 4.0 * domain.delta_f / (domain.window_factor * s)
            self._weights[det] = w
            self._weights_re_im[det] = np.repeat(w, 2)
            self._dconj_w[det] = np.conj(d) * w
            dd += float(np.sum(w * np.abs(d) ** 2))
        self._dd = dd

    @property
    def fingerprint(self) -> str:
        """SHA-256 of the data, PSDs, domain, times and waveform model (identifies checkpoints)."""
        import hashlib

        h = hashlib.sha256()
        h.update(repr((self.domain.to_dict(), self.trigger_time, self.time_origin, self.detectors)).encode())
        wg = self.waveform_generator
        h.update(repr([getattr(wg, a, None) for a in ("approximant", "f_ref", "f_start")]).encode())
        for det in self.detectors:
            h.update(np.ascontiguousarray(self._dconj_w[det]).tobytes())
            h.update(np.ascontiguousarray(self._weights[det]).tobytes())
        return h.hexdigest()

    def log_noise_evidence(self) -> float:
        """log L of the noise-only hypothesis: -1/2 Σ_I <d_I, d_I>."""
        return -0.5 * self._dd

    # -- waveforms -------------------------------------------------------------------------
    def polarizations(self, params: Mapping[str, np.ndarray], workers: int = 1, progress: bool = False):
        """(h_plus, h_cross, failed) from the waveform generator, restricted to the band."""
        hp, hc, failed = self.waveform_generator.generate_batch(
            {k: np.asarray(v, dtype=float) for k, v in params.items()}, workers=workers, progress=progress
        )
        hp, hc = np.asarray(hp), np.asarray(hc)
        n = len(np.atleast_1d(next(iter(params.values()))))
        if hp.shape != (n, len(self.domain)) or hc.shape != hp.shape:
            raise DomainMismatchError(
                f"likelihood: waveform generator returned shape {hp.shape}, expected ({n}, {len(self.domain)})"
            )
        return hp[:, self._band], hc[:, self._band], np.asarray(failed, dtype=bool)

    # -- likelihood --------------------------------------------------------------------------
    def log_likelihood(
        self,
        params: Mapping[str, np.ndarray],
        workers: int = 1,
        chunk_size: int = 256,
        progress: bool = False,
    ) -> np.ndarray:
        """Exact log L for n samples (dict of arrays, bilby names); NaN where the waveform failed.

        Waveforms are generated in chunks of ``chunk_size`` with ``workers`` processes.
        """
        return chunked_log_likelihood(self, params, workers, chunk_size, progress)

    def _time_shift(self, dt: np.ndarray) -> np.ndarray:
        """exp(-2πi f dt) on the band frequencies, shape (len(dt), n_band); dt in seconds.

        Rows up to the cache block size reuse one buffer (valid until the next call).
        """
        dt = np.asarray(dt, dtype=float)
        if len(dt) > _CACHE_ROWS:
            return _phase_ramp(self._f[0], self.domain.delta_f, len(self._f), dt)
        if self._ramp_buffer is None:
            n_block = -(-len(self._f) // _SHIFT_BLOCK)
            self._ramp_buffer = np.empty((_CACHE_ROWS, n_block * _SHIFT_BLOCK), dtype=complex)
        return _phase_ramp(self._f[0], self.domain.delta_f, len(self._f), dt, out=self._ramp_buffer)

    def overlaps(self, params: Mapping[str, np.ndarray], h_plus: np.ndarray, h_cross: np.ndarray):
        """Complex Σ_I (d_I|h_I) and real Σ_I <h_I, h_I> for band polarisations (n, n_band).

        (a|b) = 4 Δf Σ a* b / (w S) is the complex inner product, so log L = -1/2 <d, d> +
        Re(d|h) - 1/2 <h, h>. Multiplying both polarisations by exp(iα) multiplies (d|h) by
        exp(iα) and leaves <h, h> unchanged (used for phase recovery).
        """
        params = _as_arrays(params)
        for key in EXTRINSIC_KEYS:
            if key not in params:
                raise DataError(f"likelihood: sample parameter {key!r} is missing")
        n = len(params["ra"])
        dh, hh = np.empty(n, dtype=complex), np.empty(n)
        for i0 in range(0, n, _CACHE_ROWS):  # blocks of rows that stay in the CPU cache
            sl = slice(i0, i0 + _CACHE_ROWS)
            dh[sl], hh[sl] = self._overlaps_block({k: params[k][sl] for k in EXTRINSIC_KEYS}, h_plus[sl], h_cross[sl])
        return dh, hh

    def _overlaps_block(self, params, h_plus, h_cross):
        ra, dec, psi, t_c = (params[k] for k in EXTRINSIC_KEYS)
        f_plus, f_cross = self.network.antenna_patterns(ra, dec, psi, t_c)  # (n, n_det)
        delays = self.network.time_delays(ra, dec, t_c)
        # <h_I, h_I> = F+² <h+, h+> + Fx² <hx, hx> + 2 F+ Fx Re<h+, hx>, with detector I's PSD;
        # sums over the (re, im) float views avoid complex temporaries
        hp_v = np.ascontiguousarray(h_plus, dtype=complex).view(float)
        hc_v = np.ascontiguousarray(h_cross, dtype=complex).view(float)
        hh = np.zeros(len(t_c))
        for i, det in enumerate(self.detectors):
            w2 = self._weights_re_im[det]
            pp = np.einsum("ij,ij,j->i", hp_v, hp_v, w2)
            cc = np.einsum("ij,ij,j->i", hc_v, hc_v, w2)
            pc = np.einsum("ij,ij,j->i", hp_v, hc_v, w2)
            hh += f_plus[:, i] ** 2 * pp + f_cross[:, i] ** 2 * cc + 2 * f_plus[:, i] * f_cross[:, i] * pc
        dh = np.zeros(len(t_c), dtype=complex)
        for i, det in enumerate(self.detectors):
            shift = self._time_shift(t_c + self._offset + delays[:, i])
            dcw = self._dconj_w[det]
            dh += f_plus[:, i] * np.einsum("ij,ij,j->i", h_plus, shift, dcw)
            dh += f_cross[:, i] * np.einsum("ij,ij,j->i", h_cross, shift, dcw)
        return dh, hh


def chunked_log_likelihood(likelihood, params: Mapping[str, np.ndarray], workers: int = 1, chunk_size: int = 256,
                           progress: bool = False) -> np.ndarray:
    """log L = log_noise_evidence + Re(d|h) - <h, h>/2 for n samples (dict of arrays), in chunks of
    ``chunk_size``, from ``likelihood.polarizations`` and ``likelihood.overlaps``; NaN where the waveform
    failed."""
    params = _as_arrays(params)
    n = _num_samples(params)
    out = np.empty(n)
    starts = range(0, n, chunk_size)
    if progress:
        from tqdm import tqdm

        starts = tqdm(starts, desc="likelihood", unit="chunk", total=len(starts))
    for i0 in starts:
        chunk = {k: v[i0 : i0 + chunk_size] for k, v in params.items()}
        hp, hc, failed = likelihood.polarizations(chunk, workers=workers)
        dh, hh = likelihood.overlaps(chunk, hp, hc)
        logl = likelihood.log_noise_evidence() + dh.real - 0.5 * hh
        logl[failed | ~np.isfinite(logl)] = np.nan
        out[i0 : i0 + chunk_size] = logl
    return out


_SHIFT_BLOCK = 256
_CACHE_ROWS = 16


def _phase_ramp(f0: float, df: float, n_freq: int, dt: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """exp(-2πi (f0 + k df) dt) for k < n_freq, shape (len(dt), n_freq).

    Exact exponentials at the start of each block of 256 bins times powers of exp(-2πi df dt)
    (products of at most 256 factors: relative error < 1e-13), ~4x faster than np.exp. ``out``
    (complex, at least (len(dt), n_freq rounded up to 256)) avoids a new allocation per call.
    """
    n, n_block = len(dt), -(-n_freq // _SHIFT_BLOCK)
    w = -2j * np.pi * dt[:, None]
    anchors = np.exp(w * (f0 + df * _SHIFT_BLOCK * np.arange(n_block)))  # (n, n_block)
    steps = np.empty((n, _SHIFT_BLOCK), dtype=complex)
    steps[:, 0] = 1.0
    steps[:, 1:] = np.exp(w * df)
    np.cumprod(steps, axis=1, out=steps)
    if out is None:
        out = np.empty((n, n_block * _SHIFT_BLOCK), dtype=complex)
    full = out[:n, : n_block * _SHIFT_BLOCK].reshape(n, n_block, _SHIFT_BLOCK)
    np.multiply(anchors[:, :, None], steps[:, None, :], out=full)
    return out[:n, :n_freq]


def _check_array(x, n: int, what: str, dtype) -> np.ndarray:
    try:
        a = np.asarray(x, dtype=dtype)
    except (TypeError, ValueError):
        raise DataError(f"likelihood: {what} is not a numeric array") from None
    if a.shape != (n,):
        raise DomainMismatchError(f"likelihood: {what} has shape {a.shape}, expected ({n},) on the domain grid")
    return a


def _as_arrays(params: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {k: np.atleast_1d(np.asarray(v, dtype=float)) for k, v in params.items()}


def _num_samples(params: Mapping[str, np.ndarray]) -> int:
    lengths = {len(v) for v in params.values()}
    if len(lengths) != 1:
        raise DataError(f"likelihood: sample arrays have different lengths {sorted(lengths)}")
    return lengths.pop()
