"""Batched training data: bank waveforms + extrinsic prior + ASDs -> (θ, network input, proxies).

One batch, with no Python loop over samples, on the device of the bank tensors:

1. bank entries ``idx`` give the intrinsic parameters and h+/h× (decompressed from SVD
   coefficients if the bank is compressed);
2. extrinsic parameters are drawn from the prior (torch inverse-CDF samplers);
3. arrival times t_I = t_c + Δt_I(ra, dec); with GNPE, proxies t̂_I = t_I + U(-κ, κ);
4. projection h_I = (F+ h+ + F× h×) (d_ref/d_L) · exp(-2πi f (t_I - t̂_I)) — the GNPE data
   shift exp(+2πi f t̂_I) is applied in the same phase factor (without GNPE t̂ = 0);
5. whitening by an ASD drawn independently per sample and detector from the ASD arrays,
   divided by domain.noise_std, plus unit white Gaussian noise (each real/imaginary part);
6. θ = standardised inference parameters, proxies = standardised GNPE context.

All randomness comes from the ``torch.Generator`` passed in, so batches are reproducible
(the trainer saves the generator state in its checkpoints). The generator must live on the
pipeline's device.
"""

from __future__ import annotations

from typing import Mapping, NamedTuple, Sequence

import numpy as np
import torch

from dingo_gw.detectors import DetectorNetwork
from dingo_gw.domain import FrequencyDomain
from dingo_gw.errors import ConfigError, DataError, DomainMismatchError
from dingo_gw.pipeline.extrinsic import ExtrinsicSampler
from dingo_gw.pipeline.gnpe import GNPESettings, GNPETimeProxies, is_time_parameter
from dingo_gw.pipeline.network_input import NetworkInput
from dingo_gw.pipeline.polarizations import PolarizationSource
from dingo_gw.pipeline.standardization import Standardization
from dingo_gw.priors import EXTRINSIC_PARAMETERS, REFERENCE_EXTRINSIC


_COMPLEX = {torch.float32: torch.complex64, torch.float64: torch.complex128}


class Batch(NamedTuple):
    """One training batch (float tensors on the pipeline device).

    theta: (B, D) standardised parameters; data: (B, n_det, 3, n_band) network input;
    proxies: (B, P) standardised GNPE context (P = 0 without GNPE).
    """

    theta: torch.Tensor
    data: torch.Tensor
    proxies: torch.Tensor


class DataPipeline:
    """Simulates training batches from a waveform bank, an ASD dataset and an extrinsic prior.

    Arguments:
        domain: the frequency domain of bank and ASDs (with the data's window factor).
        detectors: detector names, e.g. ["H1", "L1"].
        ref_time: reference GPS time (s) fixing GMST, e.g. the trigger time of the event class.
        polarizations: bank h+/h× (:class:`PolarizationSource`).
        parameters: bank parameters, dict name -> (N,) array (bilby names).
        asds: dict detector -> (M_det, n_freq) ASD array [1/sqrt(Hz)] (full grid or band).
        inference_parameters: names to infer: bank parameters, extrinsic parameters, or
            detector arrival times "{det}_time" (s, relative to ref_time).
        extrinsic_prior: bilby PriorDict / dict of bilby strings / None for the default
            (geocent_time relative to ref_time).
        gnpe: GNPE time-proxy settings, or None for no GNPE.
        standardization / proxy_standardization: fixed standardisations (e.g. from a network
            file or checkpoint); estimated from ``stats_samples`` simulated parameter draws
            (seeded by ``stats_seed``, so reproducible) if None.
        asd_reference: dict detector -> ASD scale of the third input channel; default the median
            ASD of the dataset in the band.
        ref_distance: luminosity distance (Mpc) of the bank waveforms.
        dtype: float dtype of the network inputs.
        device: where batches are made ("cpu", "cuda", ...); default the bank tensors' device.
            Generators passed to the batch methods must live on this device.
    """

    def __init__(
        self,
        *,
        domain: FrequencyDomain,
        detectors: Sequence[str],
        ref_time: float,
        polarizations: PolarizationSource,
        parameters: Mapping[str, np.ndarray | torch.Tensor],
        asds: Mapping[str, np.ndarray | torch.Tensor],
        inference_parameters: Sequence[str],
        extrinsic_prior=None,
        gnpe: GNPESettings | None = GNPESettings(),
        standardization: Standardization | None = None,
        proxy_standardization: Standardization | None = None,
        asd_reference: Mapping[str, float] | None = None,
        ref_distance: float = REFERENCE_EXTRINSIC["luminosity_distance"],
        dtype: torch.dtype = torch.float32,
        stats_samples: int = 100_000,
        stats_seed: int = 0,
        device: str | torch.device | None = None,
    ):
        if dtype not in _COMPLEX:
            raise ConfigError(f"pipeline dtype must be torch.float32 or torch.float64, got {dtype}")
        self.domain = domain
        self.polarizations = polarizations if device is None else polarizations.to(device)
        self.device = self.polarizations.device
        self.dtype = dtype
        self.ref_distance = float(ref_distance)
        n_band = len(domain) - domain.min_index
        if self.polarizations.n_band != n_band:
            raise DomainMismatchError(
                f"bank waveforms have {self.polarizations.n_band} bins in the band; the domain has {n_band}"
            )
        self.network = DetectorNetwork(detectors, ref_time)
        self.detectors = self.network.names
        self.extrinsic = ExtrinsicSampler(extrinsic_prior, device=self.device)
        lo, hi = self.extrinsic.support("geocent_time")
        if max(abs(lo), abs(hi)) > domain.duration / 2:
            raise ConfigError(
                f"extrinsic prior: geocent_time must be relative to the reference time "
                f"(|t| < {domain.duration / 2} s), got [{lo}, {hi}]"
            )
        self.bank_parameters = _load_parameters(parameters, len(self.polarizations), self.device)
        asds = _load_asds(asds, self.detectors, domain, n_band, self.device)
        self.inference_parameters = self._check_inference_parameters(inference_parameters)
        self.proxies = GNPETimeProxies(self.detectors, gnpe) if gnpe is not None else None

        if standardization is None or (self.proxies is not None and proxy_standardization is None):
            std, pstd = self._estimate_standardization(stats_samples, stats_seed)
            standardization = standardization or std
            proxy_standardization = proxy_standardization or pstd
        if asd_reference is None:
            asd_reference = {d: float(torch.median(asds[d])) for d in self.detectors}
        self.input = NetworkInput(domain, self.detectors, ref_time, standardization, asd_reference, gnpe,
                                  proxy_standardization)
        if self.input.inference_parameters != self.inference_parameters:
            raise ConfigError(
                f"standardisation keys {list(self.input.inference_parameters)} differ from inference "
                f"parameters {list(self.inference_parameters)}"
            )
        # per detector, on the band: 1 / (ASD · noise_std) and the third input channel
        self._inv_asd = [(1.0 / (asds[d] * domain.noise_std)).to(dtype).contiguous() for d in self.detectors]
        self._asd_channel = [(self.input.asd_reference[d] / asds[d]).to(dtype).contiguous() for d in self.detectors]

    # -- properties ---------------------------------------------------------------------
    def __len__(self) -> int:
        """Number of bank waveforms."""
        return len(self.polarizations)

    @property
    def theta_dim(self) -> int:
        return self.input.theta_dim

    @property
    def proxy_dim(self) -> int:
        return self.input.proxy_dim

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """(n_det, 3, n_band)."""
        return self.input.input_shape

    def metadata(self) -> dict:
        """Plain-type description for the network file: NetworkInput metadata + prior etc."""
        meta = self.input.to_metadata()
        meta["extrinsic_prior"] = self.extrinsic.prior_strings()
        meta["ref_distance"] = self.ref_distance
        return meta

    # -- parameters ---------------------------------------------------------------------
    def _check_inference_parameters(self, names) -> tuple[str, ...]:
        names = list(names)
        available = set(self.bank_parameters) | set(EXTRINSIC_PARAMETERS) | {f"{d}_time" for d in self.detectors}
        if not names:
            raise ConfigError("inference_parameters: empty")
        for k in names:
            if k not in available:
                raise ConfigError(
                    f"inference parameter {k!r} is neither a bank parameter, an extrinsic parameter nor a "
                    f"detector time; available: {', '.join(sorted(available))}"
                )
        if len(set(names)) != len(names):
            raise ConfigError(f"inference_parameters: duplicates in {names}")
        return tuple(names)

    def sample_parameters(self, idx: torch.Tensor, generator: torch.Generator | None = None):
        """Physical parameters of bank entries ``idx`` with fresh extrinsic draws.

        Returns (params: dict of float64 (B,) incl. "{det}_time", arrival times (B, n_det),
        proxies t̂ (B, n_det) or None). Time parameters are relative to ref_time, unshifted.
        """
        idx = idx.to(self.device)
        params = {k: v.index_select(0, idx) for k, v in self.bank_parameters.items()}
        params.update(self.extrinsic.sample(len(idx), generator))
        t_det = self.network.arrival_times(params["ra"], params["dec"], params["geocent_time"])
        for i, d in enumerate(self.detectors):
            params[f"{d}_time"] = t_det[:, i]
        t_hat = self.proxies.sample(t_det, generator) if self.proxies is not None else None
        return params, t_det, t_hat

    def _estimate_standardization(self, n: int, seed: int):
        gen = torch.Generator(device=self.device)
        gen.manual_seed(seed)
        idx = torch.randint(len(self), (n,), generator=gen, device=self.device)
        params, _, t_hat = self.sample_parameters(idx, gen)
        values = {}
        for k in self.inference_parameters:
            v = params[k]
            if is_time_parameter(k) and self.proxies is not None:
                v = v - self.proxies.reference_shift(t_hat)
            values[k] = v
        std = Standardization.from_samples(values, self.inference_parameters)
        pstd = None
        if self.proxies is not None:
            ctx = self.proxies.context(t_hat)
            pstd = Standardization.from_samples({k: ctx[:, i] for i, k in enumerate(self.proxies.names)},
                                                self.proxies.names)
        return std, pstd

    # -- batches ------------------------------------------------------------------------
    def random_indices(self, batch_size: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``batch_size`` bank indices drawn uniformly with replacement."""
        return torch.randint(len(self), (batch_size,), generator=generator, device=self.device)

    def sample_batch(self, batch_size: int, generator: torch.Generator | None = None) -> Batch:
        """A batch of random bank entries (see :meth:`batch`)."""
        return self.batch(self.random_indices(batch_size, generator), generator)

    def batch(self, idx: torch.Tensor, generator: torch.Generator | None = None, noise: bool = True) -> Batch:
        """The batch for bank entries ``idx`` (B,): fresh extrinsic parameters, ASDs and noise.

        ``noise=False`` returns noise-free whitened signals (for SVD bases and tests). The chain of
        transforms, each drawing from ``generator`` in this order: extrinsic sampling (+ GNPE
        proxies), standardisation, projection with time shifts, ASD draw, whitening + noise.
        """
        params, t_det, t_hat = self.sample_parameters(idx, generator)
        theta, proxies, shifts = self.standardize(params, t_det, t_hat)
        strain = self.project(idx, params, shifts)
        inv_asd, asd_channel = self.draw_asds(len(idx), generator)
        return Batch(theta, self.whiten_and_add_noise(strain, inv_asd, asd_channel, generator, noise), proxies)

    def standardize(self, params: Mapping[str, torch.Tensor], t_det: torch.Tensor, t_hat: torch.Tensor | None):
        """(θ standardised (B, theta_dim), proxies standardised (B, proxy_dim), time shifts (B, n_det) s):
        the shifts are t_I - t̂_I with GNPE (the data shift by the proxies), else t_I."""
        theta = self.input.encode_theta(params, t_hat).to(self.dtype)
        if self.proxies is not None:
            return theta, self.input.encode_proxies(t_hat).to(self.dtype), t_det - t_hat
        return theta, torch.zeros((len(theta), 0), dtype=self.dtype, device=self.device), t_det

    def project(self, idx: torch.Tensor, params: Mapping[str, torch.Tensor], shifts: torch.Tensor) -> torch.Tensor:
        """Detector strains of bank entries ``idx`` at ``params``, shifted by ``shifts``: real view
        (B, n_det, n_band, 2) of (F+ h+ + F× h×) (d_ref / d_L) exp(-2πi f shift)."""
        h = self.polarizations.get_stacked(idx)  # (B, 2, n_band)
        if h.dtype != _COMPLEX[self.dtype]:
            h = h.to(_COMPLEX[self.dtype])
        return self.network.project_stacked(
            h, params["ra"], params["dec"], params["psi"], params["geocent_time"], params["luminosity_distance"],
            self.ref_distance, shifts, self.domain.min_index * self.domain.delta_f, self.domain.delta_f, self.dtype)

    def draw_asds(self, B: int, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(1 / (ASD · noise_std) (B, n_det, n_band), the ASD channel of the network input (B, n_det, n_band)):
        an ASD drawn independently per sample and detector."""
        n_det, n_band = len(self.detectors), self._inv_asd[0].shape[-1]
        inv_asd = torch.empty((B, n_det, n_band), dtype=self.dtype, device=self.device)
        asd_channel = torch.empty((B, n_det, n_band), dtype=self.dtype, device=self.device)
        for i in range(n_det):
            j = torch.randint(self._inv_asd[i].shape[0], (B,), generator=generator, device=self.device)
            inv_asd[:, i] = self._inv_asd[i].index_select(0, j)
            asd_channel[:, i] = self._asd_channel[i].index_select(0, j)
        return inv_asd, asd_channel

    def whiten_and_add_noise(self, strain: torch.Tensor, inv_asd: torch.Tensor, asd_channel: torch.Tensor,
                             generator: torch.Generator | None = None, noise: bool = True) -> torch.Tensor:
        """Network input (B, n_det, 3, n_band): [Re, Im] of strain / (ASD noise_std) + unit white noise
        (none with ``noise=False``), and the ASD channel."""
        B, n_det, n_band = inv_asd.shape
        data = torch.empty((B, n_det, 3, n_band), dtype=self.dtype, device=self.device)
        data[:, :, 2] = asd_channel
        if noise:
            signal = torch.randn((B, n_det, 2, n_band), generator=generator, dtype=self.dtype, device=self.device)
        else:
            signal = torch.zeros((B, n_det, 2, n_band), dtype=self.dtype, device=self.device)
        signal[:, :, 0].addcmul_(strain[..., 0], inv_asd)
        signal[:, :, 1].addcmul_(strain[..., 1], inv_asd)
        data[:, :, :2] = signal
        return data

    def whitened_signals(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Noise-free whitened detector signals (n, n_det, n_band) complex, as the network sees
        them (GNPE-shifted), for random bank entries: the input of the SVD that initialises the
        embedding network's projection layer."""
        data = self.batch(self.random_indices(n, generator), generator, noise=False).data
        return torch.complex(data[:, :, 0], data[:, :, 1])


def _load_parameters(parameters, n, device) -> dict[str, torch.Tensor]:
    out = {}
    for k, v in parameters.items():
        t = torch.as_tensor(np.asarray(v) if not isinstance(v, torch.Tensor) else v).to(torch.float64)
        if t.shape != (n,):
            raise DataError(f"bank parameter {k!r} has shape {tuple(t.shape)}, expected ({n},)")
        if not torch.isfinite(t).all():
            raise DataError(f"bank parameter {k!r} has NaN or infinite values")
        out[k] = t.to(device)
    return out


def _load_asds(asds, detectors, domain: FrequencyDomain, n_band: int, device) -> dict[str, torch.Tensor]:
    out = {}
    for d in detectors:
        if d not in asds:
            raise DataError(f"ASD dataset has no detector {d} (it has {', '.join(asds)})")
        a = asds[d]
        a = torch.as_tensor(np.asarray(a) if not isinstance(a, torch.Tensor) else a).to(torch.float64)
        if a.ndim == 1:
            a = a.unsqueeze(0)
        if a.ndim != 2:
            raise DataError(f"ASDs of {d} must be (M, n_freq), got shape {tuple(a.shape)}")
        if a.shape[-1] == len(domain):
            a = a[:, domain.min_index:]
        elif a.shape[-1] != n_band:
            raise DomainMismatchError(
                f"ASDs of {d} have {a.shape[-1]} bins; expected {len(domain)} (full grid) or {n_band} (band)"
            )
        if a.shape[0] == 0:
            raise DataError(f"ASD dataset has no ASDs for {d}")
        if not (torch.isfinite(a).all() and (a > 0).all()):
            raise DataError(f"ASDs of {d} must be finite and > 0 for f >= f_min")
        out[d] = a.to(device)
    return out
