"""The transforms between physical data/parameters and the network's inputs/outputs.

Shared by training (:class:`~dingo_gw.pipeline.data_pipeline.DataPipeline`) and inference, so
both see identical conventions:

Data. FD strain (bilby convention dt·rfft) on the full grid 0..f_max is whitened by
``ASD · domain.noise_std`` and restricted to the band f >= f_min (``n_band`` bins). The network
input is float (B, n_det, 3, n_band) with channels [Re d_w, Im d_w, asd_ref_I / ASD_I(f)], where
asd_ref_I is a per-detector constant (the median training ASD in the band) that makes the third
channel O(1). Times are relative to the event (at training: the reference) time, i.e. a signal
arriving at the geocentre at time t_c has phase exp(-2πi f (t_c + Δt_I)).

GNPE. With proxies t̂ (B, n_det) (s, same time frame) each detector's whitened data is multiplied
by exp(+2πi f t̂_I) and the network context gets the standardised proxy values of
:class:`~dingo_gw.pipeline.gnpe.GNPETimeProxies`; time parameters are relative to t̂_ref when
proxies are relative.

Parameters. θ (B, D) = standardised values of ``inference_parameters`` (bilby names; time
parameters relative to the event time, possibly minus t̂_ref; ra in the network frame, see
:meth:`NetworkInput.decode_theta`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
import torch

from dingo_gw.detectors import DetectorNetwork, gmst, phase_factor
from dingo_gw.domain import FrequencyDomain
from dingo_gw.errors import DataError, DomainMismatchError, FileFormatError
from dingo_gw.pipeline.gnpe import GNPESettings, GNPETimeProxies, is_time_parameter
from dingo_gw.pipeline.standardization import Standardization

#: Channels of the network input, per detector.
CHANNELS = ("re", "im", "asd_ref_over_asd")


@dataclass
class EventInput:
    """Whitened FD strain of one event on the band and its ASD, as tensors.

    ``whitened``: (n_det, n_band) complex, times relative to the event time;
    ``asd``: (n_det, n_band) float, 1/sqrt(Hz).
    """

    whitened: torch.Tensor
    asd: torch.Tensor


class NetworkInput:
    """Conventions of one network: domain, detectors, reference time, standardisation, GNPE."""

    def __init__(
        self,
        domain: FrequencyDomain,
        detectors: Sequence[str],
        ref_time: float,
        theta_standardization: Standardization,
        asd_reference: Mapping[str, float],
        gnpe: GNPESettings | None = None,
        proxy_standardization: Standardization | None = None,
    ):
        self.domain = domain
        self.network = DetectorNetwork(detectors, ref_time)
        self.detectors = self.network.names
        self.theta_standardization = theta_standardization
        self.asd_reference = {d: float(asd_reference[d]) for d in self.detectors}
        self.gnpe = gnpe
        self.proxies = GNPETimeProxies(self.detectors, gnpe) if gnpe is not None else None
        if self.proxies is not None:
            if proxy_standardization is None or tuple(proxy_standardization.keys) != self.proxies.names:
                raise DataError(f"GNPE needs a standardisation of the proxies {self.proxies.names}")
        self.proxy_standardization = proxy_standardization if self.proxies is not None else None
        self.frequencies = domain.frequencies[domain.min_index:]
        self._freq_cache: dict = {}

    # -- shapes -------------------------------------------------------------------------
    @property
    def ref_time(self) -> float:
        return self.network.ref_time

    @property
    def inference_parameters(self) -> tuple[str, ...]:
        return self.theta_standardization.keys

    @property
    def theta_dim(self) -> int:
        return len(self.theta_standardization)

    @property
    def proxy_dim(self) -> int:
        return 0 if self.proxies is None else len(self.proxies.names)

    @property
    def n_band(self) -> int:
        return len(self.frequencies)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """Shape of one network input: (n_det, 3, n_band)."""
        return (len(self.detectors), len(CHANNELS), self.n_band)

    @property
    def log_det(self) -> float:
        """log|dθ_std/dθ|: log q(θ) = log q_network(θ_std) + log_det (GNPE shifts have unit Jacobian)."""
        return self.theta_standardization.log_det

    def freqs(self, device, dtype=torch.float64) -> torch.Tensor:
        key = (torch.device(device), dtype)
        if key not in self._freq_cache:
            self._freq_cache[key] = torch.as_tensor(self.frequencies, dtype=dtype, device=device)
        return self._freq_cache[key]

    # -- metadata -----------------------------------------------------------------------
    def to_metadata(self) -> dict:
        """Plain-type description (for the network file)."""
        return {
            "domain": self.domain.to_dict(),
            "detectors": list(self.detectors),
            "ref_time": self.ref_time,
            "inference_parameters": list(self.inference_parameters),
            "standardization": self.theta_standardization.to_dict(),
            "asd_reference": dict(self.asd_reference),
            "gnpe": None if self.gnpe is None else self.gnpe.to_dict(),
            "proxy_standardization": None
            if self.proxy_standardization is None
            else self.proxy_standardization.to_dict(),
            "channels": list(CHANNELS),
        }

    @classmethod
    def from_metadata(cls, meta: Mapping) -> "NetworkInput":
        try:
            proxy = meta.get("proxy_standardization")
            return cls(
                domain=FrequencyDomain.from_dict(meta["domain"]),
                detectors=meta["detectors"],
                ref_time=float(meta["ref_time"]),
                theta_standardization=Standardization.from_dict(meta["standardization"]),
                asd_reference=meta["asd_reference"],
                gnpe=GNPESettings.from_dict(meta.get("gnpe")),
                proxy_standardization=None if proxy is None else Standardization.from_dict(proxy),
            )
        except KeyError as e:
            raise FileFormatError(f"network metadata is missing {e.args[0]!r}") from None

    # -- data ---------------------------------------------------------------------------
    def _band(self, x: torch.Tensor, what: str) -> torch.Tensor:
        n_full = len(self.domain)
        if x.shape[-1] == n_full:
            return x[..., self.domain.min_index:]
        if x.shape[-1] == self.n_band:
            return x
        raise DomainMismatchError(
            f"{what} has {x.shape[-1]} frequency bins; expected {n_full} (0..{self.domain.f_max} Hz, "
            f"step {self.domain.delta_f} Hz) or {self.n_band} (band f >= {self.domain.f_min} Hz)"
        )

    def whiten(self, strain: torch.Tensor, asd: torch.Tensor) -> torch.Tensor:
        """strain / (ASD · noise_std) on the band; inputs (..., n_freq) full grid or band."""
        strain, asd = self._band(strain, "strain"), self._band(asd, "ASD")
        return strain / (asd * self.domain.noise_std)

    def asd_channel(self, asd_band: torch.Tensor) -> torch.Tensor:
        """Third input channel asd_ref_I / ASD_I(f); ``asd_band`` is (..., n_det, n_band)."""
        ref = torch.as_tensor([self.asd_reference[d] for d in self.detectors], dtype=asd_band.dtype,
                              device=asd_band.device)
        return ref.unsqueeze(-1) / asd_band

    def assemble(self, whitened: torch.Tensor, asd_band: torch.Tensor, dtype=torch.float32) -> torch.Tensor:
        """Network input (..., n_det, 3, n_band) from whitened data and ASD (broadcast)."""
        asd_ch = self.asd_channel(asd_band).to(dtype)
        shape = torch.broadcast_shapes(whitened.shape, asd_ch.shape)
        whitened = whitened.expand(shape)
        return torch.stack([whitened.real.to(dtype), whitened.imag.to(dtype), asd_ch.expand(shape)], dim=-2)

    def time_shift(self, data: torch.Tensor, dt: torch.Tensor) -> torch.Tensor:
        """Delay band data (..., n_det, n_band) by dt (..., n_det) seconds: data · exp(-2πi f dt)."""
        f = self.freqs(data.device)
        return data * phase_factor(f, dt.to(data.device), dtype=data.real.dtype)

    def event_input(
        self,
        strain: Mapping[str, np.ndarray | torch.Tensor],
        asd: Mapping[str, np.ndarray | torch.Tensor],
        segment_start: float = 0.0,
        device="cpu",
        dtype=torch.complex128,
    ) -> EventInput:
        """Whiten one event's FD strain (full grid, per detector) with its ASDs.

        ``segment_start``: start of the FFT segment minus the event time (s; e.g. -6 for an
        8 s segment ending 2 s after the event); the data are shifted so that times are relative
        to the event time, as in training. Raises DataError on missing detectors or NaNs.
        """
        rows, asds = [], []
        for d in self.detectors:
            if d not in strain or d not in asd:
                raise DataError(f"event data: no strain/ASD for detector {d}")
            s = torch.as_tensor(np.asarray(strain[d]) if not isinstance(strain[d], torch.Tensor) else strain[d])
            a = torch.as_tensor(np.asarray(asd[d]) if not isinstance(asd[d], torch.Tensor) else asd[d])
            s, a = self._band(s.to(device), f"strain of {d}"), self._band(a.to(device), f"ASD of {d}")
            if not torch.isfinite(torch.view_as_real(s.to(dtype))).all():
                raise DataError(f"event data: strain of {d} has NaN or infinite values in the band")
            if not (torch.isfinite(a).all() and (a > 0).all()):
                raise DataError(f"event data: ASD of {d} must be finite and > 0 in the band")
            rows.append(s.to(dtype))
            asds.append(a.to(dtype.to_real()))
        s, a = torch.stack(rows), torch.stack(asds)
        w = self.whiten(s, a)
        if segment_start != 0.0:
            w = self.time_shift(w, torch.full((len(self.detectors),), float(segment_start), dtype=torch.float64))
        return EventInput(whitened=w, asd=a)

    def network_inputs(self, event: EventInput, proxies: torch.Tensor | None = None,
                       dtype=torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
        """(data (B, n_det, 3, n_band), standardised proxies (B, P)) for the network.

        With GNPE, ``proxies`` (B, n_det) are the arrival-time proxies t̂ (s, relative to the event
        time) and B = len(proxies); without, B = 1 and P = 0.
        """
        if self.proxies is None:
            if proxies is not None:
                raise DataError("this network does not use GNPE proxies")
            data = self.assemble(event.whitened.unsqueeze(0), event.asd.unsqueeze(0), dtype)
            return data, torch.zeros((1, 0), dtype=dtype, device=data.device)
        if proxies is None:
            raise DataError("this GNPE network needs arrival-time proxies")
        proxies = proxies.to(event.whitened.device, torch.float64)
        shifted = self.time_shift(event.whitened.unsqueeze(0), -proxies)
        data = self.assemble(shifted, event.asd.unsqueeze(0), dtype)
        return data, self.encode_proxies(proxies).to(dtype)

    # -- parameters ---------------------------------------------------------------------
    def encode_proxies(self, proxies: torch.Tensor) -> torch.Tensor:
        """Standardised context values (B, P) of proxies t̂ (B, n_det)."""
        return self.proxy_standardization.standardize(self.proxies.context(proxies.double()))

    def arrival_times(self, params: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """t_I (B, n_det) = geocent_time + Δt_I(ra, dec) in the network frame (s, event time = 0)."""
        return self.network.arrival_times(params["ra"], params["dec"], params["geocent_time"])

    def _time_offset(self, proxies, like):
        if self.proxies is None or proxies is None:
            return torch.zeros_like(like)
        return self.proxies.reference_shift(proxies.to(like.device, like.dtype))

    def encode_theta(self, params: Mapping[str, torch.Tensor], proxies: torch.Tensor | None = None,
                     event_time: float | None = None) -> torch.Tensor:
        """Standardised θ (B, D) from physical parameters (dict of (B,) tensors).

        ``event_time`` given: time parameters are absolute GPS and ra is the sky-frame value
        (converted to the network frame); otherwise both are already in the network frame.
        """
        values = {}
        for k in self.inference_parameters:
            if k not in params:
                raise DataError(f"parameter {k!r} is needed by the network but missing")
            v = torch.as_tensor(params[k], dtype=torch.float64)
            if event_time is not None:
                if is_time_parameter(k):
                    v = v - float(event_time)
                elif k == "ra":
                    v = torch.remainder(v - (gmst(event_time) - self.network.gmst_ref), 2 * np.pi)
            if is_time_parameter(k):
                v = v - self._time_offset(proxies, v)
            values[k] = v
        return self.theta_standardization.standardize(self.theta_standardization.stack(values))

    def decode_theta(self, theta: torch.Tensor, proxies: torch.Tensor | None = None,
                     event_time: float | None = None) -> dict[str, torch.Tensor]:
        """Physical parameters (dict of float64 tensors) from standardised θ (..., D).

        Undoes the standardisation and the GNPE reference shift. ``event_time`` given: time
        parameters become absolute GPS times and ra becomes the sky-frame value
        ra + GMST(event_time) - GMST(ref_time) (mod 2π); otherwise network frame.
        """
        x = self.theta_standardization.destandardize(theta.double())
        out = {}
        for i, k in enumerate(self.inference_parameters):
            v = x[..., i]
            if is_time_parameter(k):
                v = v + self._time_offset(proxies, v)
                if event_time is not None:
                    v = v + float(event_time)
            elif k == "ra" and event_time is not None:
                v = torch.remainder(v + (gmst(event_time) - self.network.gmst_ref), 2 * np.pi)
            out[k] = v
        return out
