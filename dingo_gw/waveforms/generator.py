"""Frequency-domain waveforms from LALSimulation, one at a time or in batches over a process pool.

Conventions are those of ``bilby.gw.source.lal_binary_black_hole``: bilby parameter names,
masses in detector-frame solar masses, luminosity_distance in Mpc, spins in bilby's precessing
convention (a_i, tilt_i, phi_12, phi_jl, theta_jn, phase at the reference frequency f_ref),
h_plus/h_cross on the full grid 0..f_max of the domain, zero outside [f_min, f_max], zero time
shift. LALSimulation is called directly (``SimInspiralChooseFDWaveform``) so that pool workers
import only lalsuite and numpy.
"""

from __future__ import annotations

import contextlib
import functools
import io
import itertools
import logging
import math
import multiprocessing
import os
import re
import uuid
from collections import deque
from concurrent.futures import ProcessPoolExecutor, wait
from dataclasses import dataclass
from typing import Iterator, Mapping, Sequence

import numpy as np

from dingo_gw.domain import FrequencyDomain
from dingo_gw.errors import ConfigError, DataError
from dingo_gw.priors import REFERENCE_EXTRINSIC

logger = logging.getLogger(__name__)

#: Arguments of a LALSimulation BBH waveform, in bilby's names and units.
WAVEFORM_PARAMETERS = (
    "mass_1", "mass_2", "luminosity_distance", "a_1", "a_2", "tilt_1", "tilt_2",
    "phi_12", "phi_jl", "theta_jn", "phase",
)

#: Values used for waveform arguments that are not given (non-spinning, reference distance).
_DEFAULTS = {
    "a_1": 0.0, "a_2": 0.0, "tilt_1": 0.0, "tilt_2": 0.0, "phi_12": 0.0, "phi_jl": 0.0,
    "luminosity_distance": REFERENCE_EXTRINSIC["luminosity_distance"],
}


class WaveformFailedError(DataError):
    """LALSimulation could not generate a waveform for the given parameters."""


@functools.lru_cache(maxsize=1)
def fd_approximants() -> tuple[str, ...]:
    """Names of the LALSimulation approximants implemented in the frequency domain."""
    import lalsimulation as lalsim

    names = []
    for i in range(lalsim.NumApproximants):
        if lalsim.SimInspiralImplementedFDApproximants(i):
            names.append(lalsim.GetStringFromApproximant(i))
    return tuple(names)


def check_approximant(name: str) -> int:
    """LALSimulation id of FD approximant ``name``; ConfigError listing the available ones."""
    import lalsimulation as lalsim

    available = fd_approximants()
    if name not in available:
        raise ConfigError(
            f"unknown or not frequency-domain approximant {name!r}; available: {', '.join(available)}"
        )
    return int(lalsim.GetApproximantFromString(name))


def lal_parameters(params: Mapping[str, object]) -> dict[str, np.ndarray]:
    """The waveform arguments (:data:`WAVEFORM_PARAMETERS`) as float64 arrays of equal length.

    ``params`` holds bilby names (scalars or 1-d arrays): masses as mass_1/mass_2, chirp_mass/
    mass_ratio or any other combination bilby converts; aligned spins may be chi_1/chi_2.
    Missing spins are zero, a missing luminosity_distance is the reference 100 Mpc.
    Conversions are bilby's ``convert_to_lal_binary_black_hole_parameters``.
    """
    from bilby.gw.conversion import convert_to_lal_binary_black_hole_parameters

    arrays = {}
    for key, value in params.items():
        try:
            arrays[key] = np.atleast_1d(np.asarray(value, dtype=float))
        except (TypeError, ValueError):
            raise DataError(f"waveform parameter {key!r} is not a number or array of numbers") from None
    lengths = {a.shape for a in arrays.values()}
    if len(lengths) > 1 or any(len(s) != 1 for s in lengths):
        raise DataError(f"waveform parameters must be scalars or 1-d arrays of one length, got shapes {sorted(lengths)}")
    n = next(iter(lengths))[0] if lengths else 0
    with np.errstate(invalid="ignore", divide="ignore"):
        converted, _ = convert_to_lal_binary_black_hole_parameters(dict(arrays))
    out = {}
    for key in WAVEFORM_PARAMETERS:
        if key in converted:
            value = np.broadcast_to(np.asarray(converted[key], dtype=float), (n,)).copy()
        elif key in _DEFAULTS:
            value = np.full(n, _DEFAULTS[key])
        else:
            raise DataError(
                f"waveform parameters: {key!r} is missing (need masses, e.g. chirp_mass and mass_ratio "
                "or mass_1 and mass_2, and theta_jn, phase)"
            )
        bad = ~np.isfinite(value)
        if bad.any():
            raise DataError(f"waveform parameter {key!r} is not finite at index {int(np.argmax(bad))}")
        out[key] = value
    return out


@dataclass
class BlockResult:
    """Waveforms of a block of parameters; rows that LAL failed on are zero and flagged."""

    h_plus: np.ndarray
    h_cross: np.ndarray
    failed: np.ndarray
    first_error: tuple[int, str] | None  # (row in block, message)


@dataclass
class FailureSummary:
    """How many waveforms failed, and the first failure's parameters and LAL message."""

    count: int
    total: int
    first_index: int | None = None
    first_parameters: dict[str, float] | None = None
    first_error: str | None = None

    def __str__(self) -> str:
        if not self.count:
            return f"all {self.total} waveforms generated"
        params = ", ".join(f"{k}={v:.6g}" for k, v in (self.first_parameters or {}).items())
        return (
            f"LALSimulation failed on {self.count} of {self.total} waveforms; first failure "
            f"(index {self.first_index}): {self.first_error}; parameters: {params}"
        )

    def to_dict(self) -> dict:
        return {
            "count": self.count, "total": self.total, "first_index": self.first_index,
            "first_parameters": self.first_parameters, "first_error": self.first_error,
        }


def summarize_failures(
    params: Mapping[str, np.ndarray], failed: np.ndarray, first_index: int | None, first_error: str | None
) -> FailureSummary:
    """FailureSummary of a batch; ``params`` are the parameters reported for the first failure."""
    count = int(np.count_nonzero(failed))
    summary = FailureSummary(count=count, total=int(len(failed)))
    if count:
        summary.first_index = int(first_index)
        summary.first_parameters = {k: float(np.asarray(v)[first_index]) for k, v in params.items()}
        summary.first_error = first_error
    return summary


class WaveformGenerator:
    """Frequency-domain h_plus, h_cross from a LALSimulation approximant on a FrequencyDomain.

    ``f_ref`` [Hz] is the reference frequency of spins and phase; ``f_start`` [Hz] (default
    domain.f_min, at most f_min) is where LALSimulation starts the waveform. Picklable: the
    LAL objects are built lazily in each process. Use as a context manager (or call
    :meth:`close`) to shut down the worker pool of ``generate_batch(..., workers > 1)``.
    """

    def __init__(self, approximant: str, domain: FrequencyDomain, f_ref: float, f_start: float | None = None):
        self.approximant = approximant
        self.domain = domain
        self.f_ref = float(f_ref)
        self.f_start = float(domain.f_min if f_start is None else f_start)
        self._approximant_id = check_approximant(approximant)
        if not self.f_ref > 0:
            raise ConfigError(f"f_ref must be > 0 Hz, got {f_ref}")
        if not 0 < self.f_start <= domain.f_min:
            raise ConfigError(
                f"f_start = {self.f_start} Hz must be > 0 and at most domain f_min = {domain.f_min} Hz"
            )
        self._lal_dict = None
        self._executor: ProcessPoolExecutor | None = None
        self._executor_workers = 0
        self._shared: _SharedSlots | None = None

    # --- pickling / resources -------------------------------------------------------------

    def __getstate__(self):
        state = self.__dict__.copy()
        state.update(_lal_dict=None, _executor=None, _executor_workers=0, _shared=None)
        return state

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self) -> None:
        """Shut down the worker pool and free its shared memory, if any."""
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None
            self._executor_workers = 0
        if self._shared is not None:
            self._shared.close()
            self._shared = None

    def to_dict(self) -> dict:
        return {"approximant": self.approximant, "f_ref": self.f_ref, "f_start": self.f_start,
                "domain": self.domain.to_dict()}

    @property
    def num_bins(self) -> int:
        """Length of each generated waveform (the domain's grid)."""
        return len(self.domain)

    # --- single waveforms -----------------------------------------------------------------

    def generate(self, params: Mapping[str, float]) -> tuple[np.ndarray, np.ndarray]:
        """(h_plus, h_cross), complex128 arrays on ``domain.frequencies``; WaveformFailedError if LAL fails."""
        lp = lal_parameters(params)
        if len(lp["mass_1"]) != 1:
            raise DataError("generate() takes scalar parameters; use generate_batch() for arrays")
        res = self._generate_block(lp, np.complex128)
        if res.failed[0]:
            raise WaveformFailedError(f"{self.approximant} waveform failed: {res.first_error[1]}")
        return res.h_plus[0], res.h_cross[0]

    def _lal_state(self):
        if self._lal_dict is None:
            import lal
            import lalsimulation as lalsim

            d = lal.CreateDict()
            # bilby's defaults for lal_binary_black_hole
            lalsim.SimInspiralWaveformParamsInsertPNSpinOrder(d, -1)
            lalsim.SimInspiralWaveformParamsInsertPNTidalOrder(d, -1)
            lalsim.SimInspiralWaveformParamsInsertPNPhaseOrder(d, -1)
            lalsim.SimInspiralWaveformParamsInsertPNAmplitudeOrder(d, 0)
            lalsim.SimInspiralWaveformParamsInsertTidalLambda1(d, 0.0)
            lalsim.SimInspiralWaveformParamsInsertTidalLambda2(d, 0.0)
            self._lal_dict = d
        return self._lal_dict

    def _single(self, p: Sequence[float], out_plus: np.ndarray, out_cross: np.ndarray) -> None:
        """Write one waveform (arguments in the order of WAVEFORM_PARAMETERS) into the given rows.

        Raises RuntimeError/ValueError if LAL fails or returns non-finite strain.
        """
        import lalsimulation as lalsim

        m1, m2, spins, distance, iota, phase = _si_arguments(p, self.f_ref)
        hp, hc = lalsim.SimInspiralChooseFDWaveform(
            m1, m2, *spins, distance, iota, phase, 0.0, 0.0, 0.0, self.domain.delta_f, self.f_start,
            self.domain.f_max, self.f_ref, self._lal_state(), self._approximant_id,
        )
        # LAL may pad to a power of two beyond f_max: keep bins min_index .. len(domain) - 1
        lo, n = self.domain.min_index, min(len(out_plus), hp.data.length)
        for out, h in ((out_plus, hp), (out_cross, hc)):
            out[:lo] = 0
            out[lo:n] = h.data.data[lo:n]
            out[n:] = 0
        _check_finite(out_plus, out_cross)

    def _generate_block(self, lp: Mapping[str, np.ndarray], dtype, out=None) -> BlockResult:
        """Waveforms of a block of converted parameters, into new arrays or ``out = (h_plus, h_cross)``."""
        n = len(lp["mass_1"])
        length = self.num_bins
        if out is None:
            out = np.empty((n, length), dtype=dtype), np.empty((n, length), dtype=dtype)
        h_plus, h_cross = out
        failed = np.zeros(n, dtype=bool)
        first_error = None
        rows = zip(*(np.asarray(lp[k], dtype=float).tolist() for k in WAVEFORM_PARAMETERS))
        with _lal_errors_silenced():
            for i, row in enumerate(rows):
                try:
                    self._single(row, h_plus[i], h_cross[i])
                except (RuntimeError, ValueError) as e:
                    h_plus[i] = h_cross[i] = 0
                    failed[i] = True
                    if first_error is None:
                        first_error = (i, self._explain_failure(row, e))
        return BlockResult(h_plus, h_cross, failed, first_error)

    def _explain_failure(self, row: Sequence[float], exc: Exception) -> str:
        """Message of a failure, with LAL's own error text (obtained by re-running the call)."""
        import lal

        buf = io.StringIO()
        scratch = np.empty(self.num_bins, dtype=np.complex128)
        previous = lal.swig_redirect_standard_output_error(True)
        level = lal.GetDebugLevel()
        lal.ClobberDebugLevel(1)  # LALERROR: print error messages
        try:
            with contextlib.redirect_stderr(buf):
                try:
                    self._single(row, scratch, scratch.copy())
                except (RuntimeError, ValueError):
                    pass
        finally:
            lal.ClobberDebugLevel(level)
            lal.swig_redirect_standard_output_error(previous)
        details = []
        for line in buf.getvalue().splitlines():
            if "XLAL Error - " not in line:
                continue
            where, _, message = line.split("XLAL Error - ", 1)[1].partition(": ")
            message = " ".join(message.split())
            generic = message.lower() in (str(exc).lower(), "invalid argument", "input domain error", "")
            if not generic:
                details.append(f"{re.sub(r' [(].*[)]$', '', where)}: {message}")
        text = f"{exc}" if str(exc) else type(exc).__name__
        return f"{text} ({details[0]})" if details else text

    # --- batches --------------------------------------------------------------------------

    def iter_blocks(
        self, lp: Mapping[str, np.ndarray], ranges: Sequence[tuple[int, int]], workers: int = 1,
        dtype=np.complex128, out: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> Iterator[tuple[int, int, BlockResult]]:
        """Generate rows [start, stop) of the converted parameters ``lp`` for each range, in order.

        The waveforms of a block are new arrays, or rows [start, stop) of ``out = (h_plus,
        h_cross)`` if given. With ``workers > 1`` blocks run in a process pool, at most
        ``2 * workers`` in flight (memory is bounded by a few blocks whatever the number of
        ranges); workers write the waveforms into shared memory that lives as long as the pool,
        not through pipes.
        """
        dtype = np.dtype(dtype)
        rows_out = (lambda a, b: (out[0][a:b], out[1][a:b])) if out is not None else (lambda a, b: None)
        if workers <= 1:
            for a, b in ranges:
                yield a, b, self._generate_block(_rows(lp, a, b), dtype, out=rows_out(a, b))
            return
        executor = self._pool(workers)
        shared = self._shared_slots(2 * workers, max((b - a for a, b in ranges), default=1))
        free = list(range(shared.slots))
        todo = iter(ranges)

        def launch(r):
            slot = free.pop()
            target = shared.target(slot, r[1] - r[0], dtype)
            return r, slot, executor.submit(_pool_task, _rows(lp, *r), dtype.str, target)

        pending = deque(launch(r) for r in itertools.islice(todo, shared.slots))
        try:
            while pending:
                (a, b), slot, future = pending.popleft()
                result = future.result()
                h_plus, h_cross = shared.views(slot, b - a, dtype)
                if out is None:
                    result.h_plus, result.h_cross = h_plus.copy(), h_cross.copy()
                else:
                    result.h_plus, result.h_cross = rows_out(a, b)
                    result.h_plus[...], result.h_cross[...] = h_plus, h_cross
                free.append(slot)
                nxt = next(todo, None)
                if nxt is not None:
                    pending.append(launch(nxt))
                yield a, b, result
        finally:  # stopped early: no task may still write into the slots when they are reused
            for *_, future in pending:
                future.cancel()
            wait([future for *_, future in pending])

    def generate_batch(
        self, params: Mapping[str, np.ndarray], workers: int = 1, progress: bool = False
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(h_plus, h_cross, failed_mask) for arrays of parameters; shapes (N, len(domain)), (N,).

        Rows LAL fails on are zero and flagged in ``failed_mask``; a warning reports the count
        and the first failing parameters. The result does not depend on ``workers``.
        """
        from tqdm.auto import tqdm

        lp = lal_parameters(params)
        n, length = len(lp["mass_1"]), self.num_bins
        workers = max(1, int(workers))
        block = max(1, min(64, math.ceil(n / (8 * workers))))  # >= 8 blocks per worker: balanced tail
        ranges = [(a, min(a + block, n)) for a in range(0, n, block)]
        dtype = np.dtype(np.complex128)
        h_plus, h_cross = np.empty((n, length), dtype), np.empty((n, length), dtype)
        failed = np.zeros(n, dtype=bool)
        first = (None, None)
        with tqdm(total=n, disable=not progress, unit="wf", desc=self.approximant) as bar:
            for a, b, res in self.iter_blocks(lp, ranges, workers, dtype, out=(h_plus, h_cross)):
                failed[a:b] = res.failed
                if res.first_error is not None and first[0] is None:
                    first = (a + res.first_error[0], res.first_error[1])
                bar.update(b - a)
        if failed.any():
            logger.warning("%s", summarize_failures(lp, failed, *first))
        return h_plus, h_cross, failed

    def _shared_slots(self, slots: int, rows: int) -> "_SharedSlots":
        """The pool's shared-memory slots, grown if needed (kept for the pool's lifetime, so
        that its pages are mapped once and not faulted in again for every batch)."""
        current = self._shared
        if current is None or current.slots < slots or current.rows < rows or current.length != self.num_bins:
            if current is not None:
                current.close()
            self._shared = _SharedSlots(slots, rows, self.num_bins)
        return self._shared

    def _pool(self, workers: int) -> ProcessPoolExecutor:
        if self._executor is None or self._executor_workers != workers:
            self.close()
            self._executor = ProcessPoolExecutor(
                max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                initializer=_pool_init, initargs=(self,),
            )
            self._executor_workers = workers
        return self._executor

    # --- settings checks ------------------------------------------------------------------

    def check_parameters(self, lp: Mapping[str, np.ndarray]) -> None:
        """ConfigError if these settings cannot give valid waveforms for the parameters ``lp``.

        Checks: spins supported by the approximant; the longest waveform (from f_start, LAL's
        chirp + merger + ringdown time bounds) fits in the segment T = 1/delta_f; and
        LALSimulation accepts the settings for a non-spinning binary of median masses.
        """
        import lal
        import lalsimulation as lalsim

        support = lalsim.SimInspiralGetSpinSupportFromApproximant(self._approximant_id)
        a1, a2 = lp["a_1"], lp["a_2"]
        in_plane = np.maximum(np.abs(a1 * np.sin(lp["tilt_1"])), np.abs(a2 * np.sin(lp["tilt_2"])))
        if support == lalsim.SIM_INSPIRAL_SPINLESS and (np.any(a1 != 0) or np.any(a2 != 0)):
            raise ConfigError(f"{self.approximant} is a non-spinning approximant, but the prior gives spins; fix a_1 and a_2 to 0")
        if support < lalsim.SIM_INSPIRAL_PRECESSINGSPIN and np.any(in_plane > 1e-10):
            raise ConfigError(
                f"{self.approximant} is an aligned-spin approximant, but the prior gives in-plane spins "
                "(tilt_1/tilt_2 other than 0 or pi); use aligned spins, e.g. chi_1/chi_2 with "
                "bilby.gw.prior.AlignedSpin priors, or fix tilt_1 and tilt_2 to 0"
            )

        m1, m2 = lp["mass_1"], lp["mass_2"]
        chirp_mass = (m1 * m2) ** 0.6 / (m1 + m2) ** 0.2
        lightest = np.argsort(chirp_mass)[:256]
        longest, where = 0.0, 0
        for i in lightest:
            if not (m1[i] > 0 and m2[i] > 0):
                continue
            s1, s2 = min(abs(a1[i]), 0.998), min(abs(a2[i]), 0.998)
            mi1, mi2 = m1[i] * lal.MSUN_SI, m2[i] * lal.MSUN_SI
            t = (
                lalsim.SimInspiralChirpTimeBound(self.f_start, mi1, mi2, s1, s2)
                + lalsim.SimInspiralMergeTimeBound(mi1, mi2)
                + lalsim.SimInspiralRingdownTimeBound(mi1 + mi2, max(s1, s2))
            )
            if t > longest:
                longest, where = t, i
        if longest > self.domain.duration:
            suggestion = 1.0 / 2 ** math.ceil(math.log2(longest))
            raise ConfigError(
                f"domain.delta_f = {self.domain.delta_f} Hz gives segments of T = 1/delta_f = "
                f"{self.domain.duration:g} s, but waveforms from f_start = {self.f_start} Hz last up to "
                f"{longest:.2f} s (chirp_mass = {chirp_mass[where]:.2f}); use delta_f <= {suggestion:g} Hz "
                "or a higher f_min/f_start, or a prior with heavier binaries"
            )

        probe = {k: np.array([_DEFAULTS.get(k, 0.0)]) for k in WAVEFORM_PARAMETERS}
        probe["mass_1"] = np.array([float(np.median(np.maximum(m1, m2)))])
        probe["mass_2"] = np.array([float(np.median(np.minimum(m1, m2)))])
        probe["theta_jn"] = np.array([0.4])
        res = self._generate_block(probe, np.complex128)
        if res.failed[0]:
            raise ConfigError(
                f"LALSimulation rejects the waveform settings ({self.approximant}, f_start = {self.f_start} Hz, "
                f"f_ref = {self.f_ref} Hz, f_max = {self.domain.f_max} Hz, delta_f = {self.domain.delta_f} Hz) "
                f"for a non-spinning binary of {probe['mass_1'][0]:.1f} + {probe['mass_2'][0]:.1f} Msun: "
                f"{res.first_error[1]}"
            )


class SequenceWaveformGenerator(WaveformGenerator):
    """h_plus, h_cross at arbitrary ``frequencies`` (Hz, increasing, within the domain's band) from
    ``SimInspiralChooseFDWaveformSequence``; the same conventions and values as
    :class:`WaveformGenerator` at those frequencies (relative difference ~1e-5 for IMRPhenomPv2, from
    LAL's own interpolation-free evaluation). Used by relative binning, which needs waveforms at a
    few hundred frequencies only (7x cheaper per waveform for IMRPhenomPv2)."""

    def __init__(self, approximant: str, domain: FrequencyDomain, f_ref: float, frequencies,
                 f_start: float | None = None):
        super().__init__(approximant, domain, f_ref, f_start)
        f = np.asarray(frequencies, dtype=float)
        if f.ndim != 1 or len(f) < 2 or np.any(np.diff(f) <= 0) or f[0] < self.f_start or f[-1] > domain.f_max:
            raise ConfigError(
                f"waveform frequencies must be increasing and within [{self.f_start}, {domain.f_max}] Hz")
        self.frequencies = f
        self._sequence = None

    def __getstate__(self):
        state = super().__getstate__()
        state["_sequence"] = None
        return state

    @property
    def num_bins(self) -> int:
        return len(self.frequencies)

    def to_dict(self) -> dict:
        return dict(super().to_dict(), num_frequencies=len(self.frequencies))

    def _single(self, p: Sequence[float], out_plus: np.ndarray, out_cross: np.ndarray) -> None:
        import lal
        import lalsimulation as lalsim

        if self._sequence is None:
            self._sequence = lal.CreateREAL8Vector(len(self.frequencies))
            self._sequence.data = self.frequencies
        m1, m2, spins, distance, iota, phase = _si_arguments(p, self.f_ref)
        hp, hc = lalsim.SimInspiralChooseFDWaveformSequence(
            phase, m1, m2, *spins, self.f_ref, distance, iota, self._lal_state(), self._approximant_id,
            self._sequence,
        )
        out_plus[:] = hp.data.data
        out_cross[:] = hc.data.data
        _check_finite(out_plus, out_cross)


def _si_arguments(p: Sequence[float], f_ref: float):
    """(m1, m2 [kg], (s1x, s1y, s1z, s2x, s2y, s2z), distance [m], iota, phase) for LALSimulation from one row
    of arguments in the order of WAVEFORM_PARAMETERS."""
    import lal

    mass_1, mass_2, distance, a_1, a_2, tilt_1, tilt_2, phi_12, phi_jl, theta_jn, phase = p
    m1, m2 = mass_1 * lal.MSUN_SI, mass_2 * lal.MSUN_SI
    iota, *spins = _lal_spins(theta_jn, phi_jl, tilt_1, tilt_2, phi_12, a_1, a_2, m1, m2, f_ref, phase)
    return m1, m2, tuple(spins), distance * 1e6 * lal.PC_SI, iota, phase


def _check_finite(out_plus: np.ndarray, out_cross: np.ndarray) -> None:
    if not (np.isfinite(out_plus.sum()) and np.isfinite(out_cross.sum())):
        raise ValueError("LALSimulation returned non-finite strain")


def _lal_spins(theta_jn, phi_jl, tilt_1, tilt_2, phi_12, a_1, a_2, mass_1_si, mass_2_si, f_ref, phase):
    """(iota, s1x, s1y, s1z, s2x, s2y, s2z) from bilby's spin angles at f_ref.

    The same branches as bilby.gw.conversion.bilby_to_lalsimulation_spins (aligned spins are
    passed through, precessing ones go through SimInspiralTransformPrecessingNewInitialConditions),
    written against lalsimulation so that pool workers need not import bilby.
    """
    if (a_1 == 0 or tilt_1 in (0.0, np.pi)) and (a_2 == 0 or tilt_2 in (0.0, np.pi)):
        return theta_jn, 0.0, 0.0, a_1 * np.cos(tilt_1), 0.0, 0.0, a_2 * np.cos(tilt_2)
    import lalsimulation as lalsim

    return lalsim.SimInspiralTransformPrecessingNewInitialConditions(
        theta_jn, phi_jl, tilt_1, tilt_2, phi_12, a_1, a_2, mass_1_si, mass_2_si, f_ref, phase
    )


@contextlib.contextmanager
def _lal_errors_silenced():
    """Keep LAL from printing XLAL error messages (failures are reported by us instead)."""
    import lal

    previous = lal.GetDebugLevel()
    lal.ClobberDebugLevel(0)
    try:
        yield
    finally:
        lal.ClobberDebugLevel(previous)


def _rows(lp: Mapping[str, np.ndarray], start: int, stop: int) -> dict[str, np.ndarray]:
    return {k: np.ascontiguousarray(v[start:stop]) for k, v in lp.items()}


# --- process-pool plumbing (module level so that it pickles) ------------------------------

_WORKER_GENERATOR: WaveformGenerator | None = None


def _pool_init(generator: WaveformGenerator) -> None:
    global _WORKER_GENERATOR
    from dingo_gw.io.workers import init_worker

    init_worker()  # SIGINT left to the parent; exit when the parent dies (even by SIGKILL)
    _WORKER_GENERATOR = generator


def _pool_task(lp: dict[str, np.ndarray], dtype: str, target: tuple) -> BlockResult:
    """Generate a block in a worker, into the shared-memory slot ``target``."""
    out = _SharedSlots.attach(*target)
    res = _WORKER_GENERATOR._generate_block(lp, np.dtype(dtype), out=out)
    return BlockResult(None, None, res.failed, res.first_error)


class _SharedSlots:
    """``slots`` buffers, each for ``rows`` waveforms (h_plus, h_cross) of ``length`` bins, in a
    memory-mapped temporary file (in /dev/shm when it has room): pool workers write waveforms
    there and the main process reads them without pickling. Workers keep the file mapped."""

    _ITEMSIZE = 16  # room for complex128
    _attached: dict[str, np.memmap] = {}  # per worker process: token -> mapped file

    def __init__(self, slots: int, rows: int, length: int):
        import tempfile

        self.slots, self.rows, self.length = slots, rows, length
        self.slot_bytes = 2 * rows * length * self._ITEMSIZE
        self.token = uuid.uuid4().hex
        size = slots * self.slot_bytes
        folder = None
        if os.path.isdir("/dev/shm"):
            st = os.statvfs("/dev/shm")
            if st.f_bavail * st.f_frsize > 4 * size:  # a full tmpfs would crash the writers
                folder = "/dev/shm"
        _remove_stale_buffers(folder or tempfile.gettempdir())
        fd, self.path = tempfile.mkstemp(prefix=f"{_BUFFER_PREFIX}{os.getpid()}_", dir=folder)
        try:
            os.ftruncate(fd, size)
            self.buffer = np.memmap(self.path, dtype=np.uint8, mode="r+")
        except BaseException:
            os.unlink(self.path)
            raise
        finally:
            os.close(fd)

    def close(self) -> None:
        """Remove the file (mappings stay valid until dropped)."""
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)

    def target(self, slot: int, used: int, dtype) -> tuple:
        """Where a worker writes ``used`` rows into ``slot`` (picklable)."""
        return self.token, self.path, self.rows, self.length, slot, used, np.dtype(dtype).str

    def views(self, slot: int, used: int, dtype) -> tuple[np.ndarray, np.ndarray]:
        return self._views(self.buffer, self.rows, self.length, slot, used, dtype)

    @classmethod
    def _views(cls, buffer, rows, length, slot, used, dtype) -> tuple[np.ndarray, np.ndarray]:
        dtype = np.dtype(dtype)
        start = slot * 2 * rows * length * cls._ITEMSIZE
        half = rows * length * cls._ITEMSIZE
        n = used * length * dtype.itemsize
        plus = buffer[start:start + n].view(dtype).reshape(used, length)
        cross = buffer[start + half:start + half + n].view(dtype).reshape(used, length)
        return plus, cross

    @classmethod
    def attach(cls, token, path, rows, length, slot, used, dtype) -> tuple[np.ndarray, np.ndarray]:
        """(h_plus, h_cross) views of a slot, in a worker."""
        if token not in cls._attached:
            cls._attached.clear()  # a previous pool buffer, now removed
            cls._attached[token] = np.memmap(path, dtype=np.uint8, mode="r+")
        return cls._views(cls._attached[token], rows, length, slot, used, dtype)


_BUFFER_PREFIX = "dingo_gw_waveforms_"


def _remove_stale_buffers(folder: str) -> None:
    """Remove shared-memory files left by processes that were killed (their pid is gone)."""
    import glob

    for path in glob.glob(os.path.join(folder, _BUFFER_PREFIX + "*")):
        try:
            pid = int(os.path.basename(path)[len(_BUFFER_PREFIX):].split("_", 1)[0])
            os.kill(pid, 0)
        except ProcessLookupError:
            with contextlib.suppress(OSError):
                os.unlink(path)
        except (ValueError, PermissionError, OSError):
            continue
