"""The result of an analysis: importance-weighted samples, evidences, bilby-compatible files.

Parameter names and units are bilby's: detector-frame chirp_mass, mass_1, mass_2 in solar masses,
luminosity_distance in Mpc, angles in radians, geocent_time in GPS seconds. ``<label>_result.hdf5``
(the default; or ``.json``) is bilby's result format, written with bilby's own encoding, so
``bilby.core.result.read_in_result`` reads it (dingo_gw itself reads result files with
:func:`dingo_gw.io.result_files.read_result_dict`, which never instantiates a class a file names): ``posterior`` holds
unweighted samples (the importance-weighted samples resampled), ``nested_samples`` the
importance-weighted proposal samples with their ``log_likelihood``, ``log_prior``,
``log_proposal``, ``log_weights`` and normalised ``weights`` (bilby's convention for weighted
samples; in the hdf5 file the group ``/nested_samples``, one float64 dataset per column), and
``meta_data`` the diagnostics (sample efficiency, n_eff, number of proposal samples, network,
PSD source, timings).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

import numpy as np
from scipy.special import logsumexp

from dingo_gw.errors import DataError, DingoError, FileFormatError
from dingo_gw.io.hdf5 import to_jsonable
from dingo_gw.io.atomic import atomic_write, prepare_outdir
from dingo_gw.io.result_files import column as _column, read_result_dict, scalar as _scalar, write_result_hdf5
from dingo_gw.priors import chi_eff, component_masses

#: Parameters every posterior of a precessing BBH analysis holds, in table order.
POSTERIOR_PARAMETERS = (
    "chirp_mass", "mass_ratio", "mass_1", "mass_2", "chi_eff", "a_1", "a_2", "tilt_1", "tilt_2",
    "phi_12", "phi_jl", "theta_jn", "phase", "luminosity_distance", "ra", "dec", "psi", "geocent_time",
)

#: Units shown in the summary table.
UNITS = {
    "chirp_mass": "Msun", "mass_1": "Msun", "mass_2": "Msun", "luminosity_distance": "Mpc", "geocent_time": "s",
    **{k: "rad" for k in ("tilt_1", "tilt_2", "phi_12", "phi_jl", "theta_jn", "phase", "ra", "dec", "psi")},
}

#: Columns of the weighted samples besides the parameters.
WEIGHT_COLUMNS = ("log_likelihood", "log_prior", "log_proposal", "log_weights", "weights")

#: Result file formats (file extensions), bilby's both; hdf5 is the default.
RESULT_FORMATS = ("hdf5", "json")
DEFAULT_RESULT_FORMAT = "hdf5"

STATUS_OK = "ok"
STATUS_FAILED = "failed_proposal"


def check_result_format(fmt: str) -> str:
    """``fmt`` if it is a result format (hdf5, json); DataError otherwise."""
    if fmt not in RESULT_FORMATS:
        raise DataError(f"result: unknown file extension {fmt!r}; use {' or '.join(RESULT_FORMATS)}")
    return fmt


def result_filename(label: str, fmt: str = DEFAULT_RESULT_FORMAT) -> str:
    """``<label>_result.<fmt>``, the name of an analysis result file."""
    return f"{label}_result.{check_result_format(fmt)}"


class ProposalFailedError(DingoError):
    """Importance sampling rejected the network's proposal (non-finite log q or n_eff < 10)."""


def add_derived_parameters(samples: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Copy of ``samples`` with mass_1, mass_2 (from chirp_mass, mass_ratio) and chi_eff added."""
    out = {k: np.asarray(v, dtype=float) for k, v in samples.items()}
    if "chirp_mass" in out and "mass_ratio" in out and not {"mass_1", "mass_2"} <= set(out):
        out["mass_1"], out["mass_2"] = component_masses(out["chirp_mass"], out["mass_ratio"])
    spins = ("mass_1", "mass_2", "a_1", "a_2", "tilt_1", "tilt_2")
    if "chi_eff" not in out and all(k in out for k in spins):
        out["chi_eff"] = chi_eff(*(out[k] for k in spins))
    return out


def effective_sample_size(log_weights: np.ndarray) -> float:
    """n_eff = (Σ w)² / Σ w² (0 when every weight is zero)."""
    lw = np.asarray(log_weights, dtype=float)
    if not np.any(lw > -np.inf):
        return 0.0
    return float(np.exp(2 * logsumexp(lw) - logsumexp(2 * lw)))


def normalized_weights(log_weights: np.ndarray) -> np.ndarray:
    """Weights w_i / Σ w (all zero when every weight is zero)."""
    lw = np.asarray(log_weights, dtype=float)
    if not np.any(lw > -np.inf):
        return np.zeros_like(lw)
    return np.exp(lw - logsumexp(lw))


def weighted_quantiles(x: np.ndarray, weights: np.ndarray, q) -> np.ndarray:
    """Quantiles ``q`` (in [0, 1]) of samples x with non-negative weights (inverse of the weighted CDF)."""
    x, w = np.asarray(x, dtype=float), np.asarray(weights, dtype=float)
    order = np.argsort(x)
    x, w = x[order], w[order]
    cdf = np.cumsum(w)
    cdf = (cdf - 0.5 * w) / cdf[-1]
    return np.interp(q, cdf, x)


@dataclass
class Result:
    """Importance-sampled posterior and evidence of one analysis.

    ``samples`` are the weighted proposal samples (bilby names, geocent_time in GPS s) with their
    unnormalised ``log_weights`` = log L + log prior - log q; ``posterior`` the unweighted
    resampled samples (None for a failed proposal). Evidences are natural logs.
    ``status`` is ``"ok"`` or ``"failed_proposal"`` (then ``failure_reason`` says why and there
    is no posterior). ``injection_parameters`` (bilby names, GPS geocent_time) are stored for
    simulated signals (P-P tests).
    """

    samples: dict[str, np.ndarray]
    log_weights: np.ndarray
    log_evidence: float
    log_evidence_err: float
    log_noise_evidence: float
    log_bayes_factor: float
    meta_data: dict = field(default_factory=dict)
    posterior: dict[str, np.ndarray] | None = None
    log_likelihood: np.ndarray | None = None
    log_prior: np.ndarray | None = None
    log_proposal: np.ndarray | None = None
    priors: object | None = None
    injection_parameters: dict | None = None
    status: str = STATUS_OK
    failure_reason: str = ""

    @property
    def ok(self) -> bool:
        return self.status == STATUS_OK

    @property
    def num_samples(self) -> int:
        return len(self.log_weights)

    @property
    def weights(self) -> np.ndarray:
        """Normalised importance weights."""
        return normalized_weights(self.log_weights)

    @property
    def n_eff(self) -> float:
        return effective_sample_size(self.log_weights)

    @property
    def sample_efficiency(self) -> float:
        return self.n_eff / self.num_samples if self.num_samples else 0.0

    # -- tables -----------------------------------------------------------------------------
    def parameter_names(self) -> list[str]:
        """Posterior parameters: the standard ones present, then any others, in a stable order."""
        source = add_derived_parameters(self.posterior if self.posterior is not None else self.samples)
        source = {k: v for k, v in source.items() if k not in ("log_likelihood", "log_prior")}
        names = [k for k in POSTERIOR_PARAMETERS if k in source]
        return names + sorted(k for k in source if k not in names)

    def summary_table(self, credible: float = 0.9) -> str:
        """Median and central ``credible`` interval per parameter (weighted quantiles), as text."""
        lines = []
        if not self.ok:
            lines.append(f"FAILED PROPOSAL: {self.failure_reason}")
        lines.append(
            f"log evidence {self.log_evidence:.3f} ± {self.log_evidence_err:.3f}, log noise evidence "
            f"{self.log_noise_evidence:.3f}, log Bayes factor {self.log_bayes_factor:.3f}"
        )
        k_hat = self.meta_data.get("pareto_k")
        tail = "" if k_hat is None or not np.isfinite(k_hat) else (
            f", Pareto k {k_hat:.2f}" + (" (> 0.7: heavy-tailed weights, n_eff and evidence unreliable)"
                                          if k_hat > 0.7 else ""))
        lines.append(
            f"{self.num_samples} proposal samples, n_eff {self.n_eff:.1f}, sample efficiency "
            f"{100 * self.sample_efficiency:.2f} %{tail}"
        )
        refinement = self.meta_data.get("refinement") or {}
        net = refinement.get("network_proposal") or {}
        if refinement.get("status") == "done":
            lines.append(
                f"(refined proposal: the network's own had n_eff {float(net.get('n_eff') or 0):.1f}, efficiency "
                f"{100 * float(net.get('sample_efficiency') or 0):.2f} %; "
                f"{refinement.get('num_likelihood_evaluations', 0)} likelihood evaluations in all)"
            )
        elif refinement.get("status") == "skipped":
            lines.append(f"(refinement skipped: {refinement.get('reason', '')})")
        if not self.ok:
            return "\n".join(lines)
        samples = add_derived_parameters(self.samples)
        weights = self.weights
        lo, hi = (1 - credible) / 2, (1 + credible) / 2
        pct = f"{100 * credible:g} %"
        lines.append(f"{'parameter':<28}{'median':>12}{'-':>12}{'+':>12}   {pct} interval")
        for name in self.parameter_names():
            if name not in samples:
                continue
            x = samples[name]
            ref = 0.0
            if name == "geocent_time":  # show GPS times relative to a round reference
                ref = float(np.floor(np.median(x)))
            q = weighted_quantiles(x - ref, weights, [lo, 0.5, hi])
            label = name if ref == 0 else f"{name}-{ref:.0f}"
            lines.append(
                f"{label:<28}{_fmt(q[1]):>12}{_fmt(q[1] - q[0]):>12}{_fmt(q[2] - q[1]):>12}"
                f"   [{_fmt(q[0])}, {_fmt(q[2])}] {UNITS.get(name, '')}".rstrip()
            )
        return "\n".join(lines)

    # -- files ------------------------------------------------------------------------------
    def to_bilby(self, label: str = "dingo_gw", outdir: str | Path = "."):
        """This result as a ``bilby.core.result.Result`` (posterior = unweighted samples)."""
        import bilby
        import pandas as pd

        if not self.ok:
            raise ProposalFailedError(f"no posterior to export: {self.failure_reason}")
        if self.posterior is None:
            raise DataError("result has no unweighted posterior samples; resample it first")
        posterior = pd.DataFrame(add_derived_parameters(self.posterior))
        weighted = add_derived_parameters(self.samples)
        extra = {
            "log_likelihood": self.log_likelihood, "log_prior": self.log_prior,
            "log_proposal": self.log_proposal, "log_weights": self.log_weights, "weights": self.weights,
        }
        weighted.update({k: np.asarray(v, dtype=float) for k, v in extra.items() if v is not None})
        kwargs = {}
        if self.priors is not None:
            fixed = {k for k, p in self.priors.items() if isinstance(p, bilby.core.prior.DeltaFunction)}
            kwargs["priors"] = self.priors
            kwargs["search_parameter_keys"] = [k for k in self.samples if k in self.priors and k not in fixed]
            kwargs["fixed_parameter_keys"] = [k for k in self.samples if k in fixed]
        return bilby.core.result.Result(
            label=label,
            outdir=str(outdir),
            sampler="dingo_gw",
            posterior=posterior,
            nested_samples=pd.DataFrame(weighted),
            log_evidence=float(self.log_evidence),
            log_evidence_err=float(self.log_evidence_err),
            log_noise_evidence=float(self.log_noise_evidence),
            log_bayes_factor=float(self.log_bayes_factor),
            meta_data=to_jsonable(self.meta_data),
            injection_parameters=to_jsonable(self.injection_parameters) if self.injection_parameters else None,
            **kwargs,
        )

    def save(self, outdir: str | Path, label: str, extension: str = DEFAULT_RESULT_FORMAT) -> Path:
        """Write ``<outdir>/<label>_result.<extension>`` (hdf5, the default, or json) atomically; return its path.

        Both are bilby's result formats (``bilby.core.result.read_in_result`` reads them; hdf5 is what
        ``Result.save_to_file(extension="hdf5")`` writes, see :func:`write_result_hdf5`). A failed
        proposal writes ``<label>_failed_proposal.json`` (status, reason, diagnostics) instead. A
        missing ``outdir`` is created; an unwritable one is a DataError.
        """
        check_result_format(extension)
        outdir = prepare_outdir(outdir)
        if not self.ok:
            path = outdir / f"{label}_failed_proposal.json"
            report = {
                "status": self.status, "failure_reason": self.failure_reason,
                "num_proposal_samples": self.num_samples, "n_eff": self.n_eff,
                "sample_efficiency": self.sample_efficiency, "log_noise_evidence": self.log_noise_evidence,
                "meta_data": self.meta_data,
            }
            with atomic_write(path) as tmp:
                tmp.write_text(json.dumps(to_jsonable(report), indent=2, allow_nan=True))
            return path
        path = outdir / result_filename(label, extension)
        bilby_result = self.to_bilby(label, outdir)
        # bilby has no public call for the dictionary it writes (save_to_file writes in place, not atomically,
        # and renames an existing file): private API of the pinned bilby==2.8.2, checked by
        # tests/test_results.py::test_pinned_bilby_private_api
        dictionary = bilby_result._get_save_data_dictionary()
        with atomic_write(path) as tmp:
            if extension == "json":
                from bilby.core.utils import BilbyJsonEncoder

                if "priors" in dictionary:
                    dictionary["priors"] = dictionary["priors"]._get_json_dict()
                with open(tmp, "w") as f:
                    json.dump(dictionary, f, cls=BilbyJsonEncoder)
            else:
                dictionary["__module__"] = bilby_result.__module__
                dictionary["__name__"] = bilby_result.__class__.__name__
                write_result_hdf5(tmp, dictionary)
        return path

    @classmethod
    def load(cls, filename: str | Path) -> "Result":
        """Read a result file written by :meth:`save` (hdf5 or json) without running code from it.

        The file is read with the plain ``json`` module (hdf5: h5py) and checked by
        :func:`read_result_dict`: bilby's class markers are never resolved, priors are rebuilt
        through :mod:`dingo_gw.prior_parser`. Anything else is a FileFormatError.
        """
        filename = Path(filename)
        d = read_result_dict(filename)
        nested = d.get("nested_samples")
        if not isinstance(nested, dict) or "log_weights" not in nested:
            raise FileFormatError(f"{filename} is not a dingo_gw result (no importance-weighted samples)")
        weighted = {k: _column(v, filename, f"nested_samples.{k}") for k, v in nested.items()}
        extra = {k: weighted.pop(k, None) for k in WEIGHT_COLUMNS}
        posterior = d.get("posterior")
        if not isinstance(posterior, dict):
            raise FileFormatError(f"{filename}: no posterior samples")
        injection = d.get("injection_parameters")
        return cls(
            samples=weighted,
            log_weights=extra["log_weights"],
            log_evidence=_scalar(d, "log_evidence", filename),
            log_evidence_err=_scalar(d, "log_evidence_err", filename),
            log_noise_evidence=_scalar(d, "log_noise_evidence", filename),
            log_bayes_factor=_scalar(d, "log_bayes_factor", filename),
            meta_data=dict(d.get("meta_data") or {}),
            posterior={k: _column(v, filename, f"posterior.{k}") for k, v in posterior.items()},
            log_likelihood=extra["log_likelihood"],
            log_prior=extra["log_prior"],
            log_proposal=extra["log_proposal"],
            priors=d.get("priors"),
            injection_parameters=dict(injection) if injection else None,
        )


def _fmt(x: float) -> str:
    return f"{x:.4g}"


