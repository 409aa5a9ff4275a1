"""Sampling a trained network for one event: direct (NPE/FMPE) sampling and GNPE Gibbs sampling,
with the proposal log-densities that importance sampling needs.

Frames and units. Inside this module parameters live in the *network frame*: bilby names,
geocent_time and the arrival times t_I in seconds relative to the event time (the time origin of
:class:`~dingo_gw.pipeline.network_input.EventInput`), ra in the sky frame of the network's
reference time. :func:`event_frame` converts to the frame importance sampling uses: geocent_time
still relative to the event time, ra_sky = ra_net + GMST(event) - GMST(ref) (mod 2π). The rotation
has unit Jacobian, but it maps the network-frame ra *interval* [0, 2π) onto the circle: samples
with ra_net outside [0, 2π) lie outside the prior's support in the network frame and are
rejected (weight zero) instead of being wrapped, so log q stays the density of what is returned.

Densities. log q(θ) = log q_net(θ_std) + NetworkInput.log_det (standardisation; the GNPE shift of
time parameters by t̂_ref has unit Jacobian).

GNPE (Dax et al. 2022). The network models q(θ | d, t̂) with proxies t̂_I = t_I(θ) + ε_I,
ε_I ~ U(-κ, κ). Gibbs sampling (:func:`gibbs_sample`), batched over all chains: start from arrival
times t_I (from the initialisation network, or a time estimate ± a spread), then repeat: draw
t̂ = t + ε, sample θ ~ q(θ | d, t̂), recompute t_I(θ). Its samples have no tractable density, so
for importance sampling (:meth:`GNPESampler.sample_with_log_prob`) the final proxies of the chains
are fitted with an unconditional density q(t̂) (:class:`GaussianMixture`), fresh proxies are drawn
from it and θ ~ q(θ | d, t̂) with its log density. On the joint space (θ, t̂) the target
p(θ | d) Π_I κ(t̂_I - t_I(θ)) has θ-marginal p(θ | d), so with

    log q_eff = log q(t̂) + log q(θ | d, t̂) - Σ_I log κ(t̂_I - t_I(θ))

the weights L(θ) π(θ) / q_eff are exact importance weights for the posterior (κ uniform:
-log κ = n_det log 2κ inside the kernel; samples outside it have weight zero and are rejected).

Speed. With GNPE every chain sees differently shifted data, so the embedding must run once per
chain and iteration. The first embedding layer is linear in the data, so for a time shift t̂ each
of its outputs is Re Σ_f c_k(f) exp(2πi f t̂) (+ a constant from the ASD channel): a band-limited
function of t̂ that :class:`ShiftedProjection` tabulates once per event by FFT on a grid >= 12 times
finer than the band (cubic Lagrange interpolation, relative error < 1e-5; 50x faster). Sampling and log q
use the same interpolated embedding, so the proposal density stays exact; ``exact=True`` runs
the network's own first layer on shifted data instead.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Callable, Mapping

import numpy as np
import torch

from dingo_gw.detectors import gmst
from dingo_gw.errors import DataError
from dingo_gw.inference.refine.mixture import GaussianMixture
from dingo_gw.pipeline.network_input import EventInput, NetworkInput

logger = logging.getLogger(__name__)

#: Chains (or samples) per network call.
DEFAULT_BATCH_SIZE = 2048
#: Default number of Gibbs iterations.
DEFAULT_GIBBS_ITERATIONS = 30
#: Spread (s) of the initial arrival times around a time estimate when there is no init network.
DEFAULT_TIME_SPREAD = 0.01
#: Earth's radius over c (s): the largest geocentre-to-detector delay.
MAX_DETECTOR_DELAY = 0.0214
TWO_PI = 2.0 * math.pi


# ---------------------------------------------------------------------------------------------
# proposal samples
@dataclass
class ProposalSamples:
    """Samples of a network proposal for one event, in the frame of importance sampling.

    ``samples``: bilby names -> float64 arrays; geocent_time in s relative to the event time, ra
    in the sky frame of the event. ``log_prob``: log q of each sample (NaN where not known, e.g.
    plain Gibbs samples). ``accepted``: False for samples with weight zero by construction
    (outside the GNPE kernel, or ra outside [0, 2π) in the network frame); they are not
    importance-sampled but count as proposal draws. ``proxies``: the GNPE proxies t̂ (n, n_det)
    each sample was drawn with (s relative to the event time), if any. ``info``: diagnostics.
    """

    samples: dict[str, np.ndarray]
    log_prob: np.ndarray
    accepted: np.ndarray
    info: dict = field(default_factory=dict)
    proxies: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.log_prob)

    @property
    def num_accepted(self) -> int:
        return int(np.count_nonzero(self.accepted))

    def subset(self, mask: np.ndarray) -> dict[str, np.ndarray]:
        return {k: v[mask] for k, v in self.samples.items()}


def event_frame(params: Mapping[str, torch.Tensor], net_input: NetworkInput, event_time: float | None):
    """Network-frame parameters -> (numpy dict in the event frame, mask of ra_net in [0, 2π)).

    Time parameters stay relative to the event time; ra_sky = ra_net + GMST(event_time) -
    GMST(ref_time) mod 2π (no change for ``event_time`` None).
    """
    out = {k: v.detach().cpu().double().numpy().copy() for k, v in params.items()}
    n = len(next(iter(out.values())))
    valid = np.ones(n, dtype=bool)
    if "ra" in out:
        ra = out["ra"]
        valid &= (ra >= 0.0) & (ra < TWO_PI)
        if event_time is not None:
            out["ra"] = np.mod(ra + (gmst(event_time) - net_input.network.gmst_ref), TWO_PI)
    for k, v in out.items():
        valid &= np.isfinite(v)
    return out, valid


# ---------------------------------------------------------------------------------------------
# network context for shifted data
class ShiftedProjection:
    """First embedding layer of a network for one event's data shifted by arbitrary proxies.

    For detector I and output k of the (linear) projection layer, data shifted by -t̂ give
    F_k(t̂) = Re[exp(2πi f_c t̂) S_k(t̂)] + b_k, with S_k(t) = Σ_j c_jk exp(2πi (f_j - f_c) t),
    c_jk = d_j (W^re_jk - i W^im_jk), f_c the centre of the band and b_k the bias plus the ASD
    channel's (shift-independent) contribution. S_k is tabulated by one FFT on a grid of step
    h = 1/(M Δf), M >= 12 n_band, for t̂ in ``window`` (s), and interpolated with 4-point
    Lagrange polynomials. Proxies outside the window fall back to the exact computation.
    """

    OVERSAMPLING = 12

    def __init__(self, model, net_input: NetworkInput, event: EventInput, window: tuple[float, float]):
        proj = model.embedding.projection
        n_det, n = len(net_input.detectors), net_input.n_band
        if (proj.n_detectors, proj.n_channels, proj.n_bins) != (n_det, 3, n):
            raise DataError(
                f"network projection layer expects {(proj.n_detectors, proj.n_channels, proj.n_bins)} inputs, "
                f"the event has {(n_det, 3, n)}"
            )
        self.model, self.net_input, self.event = model, net_input, event
        W = proj.weight.detach().double().cpu()  # (n_det, 3 n, K)
        b = proj.bias.detach().double().cpu()[:, 0, :]  # (n_det, K)
        K = W.shape[-1]
        asd_ch = net_input.asd_channel(event.asd.double().cpu())  # (n_det, n)
        self.const = b + torch.einsum("dj,djk->dk", asd_ch, W[:, 2 * n:3 * n])  # (n_det, K)
        df = net_input.domain.delta_f
        f0 = float(net_input.frequencies[0])
        m0 = n // 2
        self.f_centre = f0 + m0 * df
        M = 1 << int(math.ceil(math.log2(self.OVERSAMPLING * n)))
        self.h = 1.0 / (M * df)
        lo = math.floor(window[0] / self.h) - 2
        hi = math.ceil(window[1] / self.h) + 3
        self.grid_start = lo * self.h
        self.num_grid = hi - lo
        self.window = (window[0], window[1])
        idx = (torch.arange(n) - m0) % M  # where c_j goes in the FFT input
        rows = torch.arange(lo, hi) % M
        d = event.whitened.to(torch.complex128).cpu()  # (n_det, n)
        table = torch.empty((n_det, self.num_grid, K), dtype=torch.complex128)
        chunk = 32
        for i in range(n_det):
            c = d[i, :, None] * torch.complex(W[i, 0:n], -W[i, n:2 * n])  # (n, K)
            for k0 in range(0, K, chunk):
                buf = torch.zeros((min(chunk, K - k0), M), dtype=torch.complex128)
                buf[:, idx] = c[:, k0:k0 + chunk].T
                s = torch.fft.ifft(buf, dim=-1) * M  # S at t_m = m h, m = 0..M-1 (period 1/Δf)
                table[i, :, k0:k0 + chunk] = s[:, rows].T
        self.table = table

    def inside(self, proxies: torch.Tensor) -> torch.Tensor:
        """Rows whose proxies all lie in the tabulated window."""
        return ((proxies >= self.window[0]) & (proxies <= self.window[1])).all(dim=-1)

    def features(self, proxies: torch.Tensor) -> torch.Tensor:
        """Projection-layer outputs (B, n_det·K) for proxies (B, n_det) (s), float64."""
        proxies = proxies.double().cpu()
        B, n_det = proxies.shape
        u = (proxies - self.grid_start) / self.h
        i0 = torch.floor(u).long()
        s = u - i0
        i0 = i0.clamp(1, self.num_grid - 3)
        w = torch.stack([-s * (s - 1) * (s - 2) / 6, (s + 1) * (s - 1) * (s - 2) / 2,
                         -(s + 1) * s * (s - 2) / 2, (s + 1) * s * (s - 1) / 6], dim=-1)  # (B, n_det, 4)
        out = torch.empty((B, n_det, self.table.shape[-1]), dtype=torch.float64)
        for i in range(n_det):
            rows = i0[:, i, None] + torch.arange(-1, 3)  # (B, 4)
            vals = self.table[i][rows]  # (B, 4, K)
            S = torch.einsum("bp,bpk->bk", w[:, i].to(vals.dtype), vals)
            carrier = torch.polar(torch.ones_like(proxies[:, i]), TWO_PI * self.f_centre * proxies[:, i])
            out[:, i] = (carrier[:, None] * S).real + self.const[i]
        return out.reshape(B, -1)


class NetworkConditional:
    """q(θ | d, t̂) (GNPE) or q(θ | d) of one network for one event, in the network frame.

    ``__call__(proxies, with_log_prob)`` -> (params: dict of float64 (B,) tensors, log q (B,) or
    None) for proxies (B, n_det); without GNPE ``proxies`` is None and ``num_samples`` says how many.
    ``exact``: run the network's own projection layer on shifted data (see
    :class:`ShiftedProjection`); ``window``: proxy range (s) tabulated by the fast path;
    ``fixed``: values of parameters the prior fixes (network frame), added to every sample.
    """

    def __init__(self, model, net_input: NetworkInput, event: EventInput, batch_size: int = DEFAULT_BATCH_SIZE,
                 exact: bool = False, window: tuple[float, float] = (-0.25, 0.25),
                 fixed: Mapping[str, float] | None = None):
        self.model, self.net_input, self.event = model, net_input, event
        self.fixed = {k: float(v) for k, v in (fixed or {}).items() if k not in net_input.inference_parameters}
        self.batch_size = int(batch_size)
        self.device = next(model.parameters()).device
        self.dtype = next(model.parameters()).dtype
        self.fast = None
        if net_input.proxies is not None and not exact:
            emb = getattr(model, "embedding", None)
            if emb is not None and hasattr(emb, "projection") and hasattr(emb, "resnet"):
                self.fast = ShiftedProjection(model, net_input, event, window)
        self._context_cache = None

    @property
    def gnpe(self) -> bool:
        return self.net_input.proxies is not None

    def context(self, proxies: torch.Tensor | None) -> torch.Tensor:
        """Network context for proxies (B, n_det) (GNPE) or the single unshifted context (1, C)."""
        inp = self.net_input
        with torch.no_grad():
            if not self.gnpe:
                if self._context_cache is None:
                    data, _ = inp.network_inputs(self.event, None, dtype=self.dtype)
                    self._context_cache = self.model.context(data.to(self.device), None)
                return self._context_cache
            proxies = proxies.double()
            pctx = inp.encode_proxies(proxies.cpu()).to(self.device, self.dtype)
            if self.fast is None:
                data, _ = inp.network_inputs(self.event, proxies, dtype=self.dtype)
                return self.model.context(data.to(self.device), pctx)
            inside = self.fast.inside(proxies.cpu())
            feats = torch.empty((len(proxies), self.fast.table.shape[0] * self.fast.table.shape[-1]),
                                dtype=self.dtype, device=self.device)
            if inside.any():
                feats[inside.to(self.device)] = self.fast.features(proxies[inside.cpu()]).to(self.device, self.dtype)
            if (~inside).any():
                data, _ = inp.network_inputs(self.event, proxies[~inside.cpu()], dtype=self.dtype)
                feats[(~inside).to(self.device)] = self.model.embedding.projection(data.to(self.device))
            emb = self.model.embedding.resnet(feats)
            return torch.cat([emb, pctx], dim=-1)

    def __call__(self, proxies: torch.Tensor | None, with_log_prob: bool = False, num_samples: int | None = None):
        """Samples of θ (network frame) given proxies (B, n_det), or ``num_samples`` without GNPE."""
        n = len(proxies) if self.gnpe else int(num_samples)
        thetas, log_qs = [], []
        for i0 in range(0, n, self.batch_size):
            b = min(self.batch_size, n - i0)
            with torch.no_grad():
                if self.gnpe:
                    ctx = self.context(proxies[i0:i0 + b])
                    draws = 1
                else:
                    ctx, draws = self.context(None), b
                if with_log_prob:
                    theta, lq = self.model.sample_and_log_prob_from_context(ctx, draws)
                    log_qs.append(lq.reshape(-1).double().cpu())
                else:
                    theta = self.model.sample_from_context(ctx, draws)
            thetas.append(theta.reshape(b, -1).double().cpu())
        theta = torch.cat(thetas)
        params = self.net_input.decode_theta(theta, proxies.double().cpu() if self.gnpe else None)
        for k, v in self.fixed.items():
            params[k] = torch.full((n,), v, dtype=torch.float64)
        log_q = torch.cat(log_qs) + self.net_input.log_det if with_log_prob else None
        return params, log_q

    def arrival_times(self, params: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """t_I(θ) (B, n_det), s relative to the event time."""
        return self.net_input.arrival_times(params)


# ---------------------------------------------------------------------------------------------
# Gibbs sampling and the extended-space proposal (generic: any conditional sampler)
@dataclass
class GibbsResult:
    """Final state of the chains: θ (network frame), the proxies θ was drawn with, and t_I(θ)."""

    params: dict[str, torch.Tensor]
    proxies: torch.Tensor
    arrival_times: torch.Tensor
    trace: list[dict] = field(default_factory=list)


def uniform_kernel_log_prob(residual: torch.Tensor, kernel: float) -> torch.Tensor:
    """Σ_I log κ(t̂_I - t_I) for the uniform kernel U(-κ, κ): -n log 2κ inside, -inf outside."""
    inside = (residual.abs() <= kernel).all(dim=-1)
    value = -residual.shape[-1] * math.log(2.0 * kernel)
    return torch.where(inside, torch.full_like(residual[..., 0], value), torch.full_like(residual[..., 0], -math.inf))


def draw_proxies(arrival_times: torch.Tensor, kernel: float) -> torch.Tensor:
    """t̂ = t + ε, ε ~ U(-κ, κ) i.i.d. (torch's global generator)."""
    u = torch.rand(arrival_times.shape, dtype=torch.float64)
    return arrival_times.double() + kernel * (2.0 * u - 1.0)


def gibbs_sample(conditional: Callable, arrival_times: Callable, t_init: torch.Tensor, kernel: float,
                 num_iterations: int = DEFAULT_GIBBS_ITERATIONS, progress: bool = False) -> GibbsResult:
    """GNPE Gibbs sampling of all chains at once.

    ``conditional(proxies)`` -> (params, _) samples θ ~ q(θ | d, t̂) for proxies (C, n_det);
    ``arrival_times(params)`` -> t_I (C, n_det); ``t_init`` (C, n_det) starting arrival times (s).
    Each iteration: t̂ = t + U(-κ, κ), θ ~ q(θ | t̂), t = t_I(θ). ``trace`` holds the mean and
    standard deviation of t_I after every iteration (convergence diagnostics).
    """
    if num_iterations < 1:
        raise DataError(f"Gibbs sampling needs at least 1 iteration, got {num_iterations}")
    t = t_init.double()
    trace = []
    iterations = range(num_iterations)
    if progress:
        from tqdm.auto import tqdm

        iterations = tqdm(iterations, desc="GNPE Gibbs", unit="it")
    params = proxies = None
    for _ in iterations:
        proxies = draw_proxies(t, kernel)
        params, _ = conditional(proxies)
        t = arrival_times(params).double()
        finite = torch.isfinite(t).all(dim=-1)
        trace.append({"mean": t[finite].mean(0).tolist(), "std": t[finite].std(0).tolist(),
                      "finite": float(finite.double().mean())})
    return GibbsResult(params, proxies, t, trace)


def extended_space_proposal(conditional: Callable, arrival_times: Callable, proxy_density: GaussianMixture,
                            num_samples: int, kernel: float, rng: np.random.Generator):
    """Fresh joint draws (t̂, θ) and the effective log q of θ on the extended space.

    t̂ ~ q(t̂) (``proxy_density``), (θ, log q(θ | t̂)) = ``conditional(t̂, with_log_prob=True)``;
    returns (params, proxies, log q_eff, inside-kernel mask) with
    log q_eff = log q(t̂) + log q(θ | t̂) - Σ_I log κ(t̂_I - t_I(θ)) (+inf outside the kernel).
    """
    proxies = torch.as_tensor(proxy_density.sample(num_samples, rng), dtype=torch.float64)
    log_q_proxy = torch.as_tensor(proxy_density.log_prob(proxies.numpy()), dtype=torch.float64)
    params, log_q_theta = conditional(proxies, with_log_prob=True)
    log_kernel = uniform_kernel_log_prob(proxies - arrival_times(params).double(), kernel)
    inside = torch.isfinite(log_kernel)
    log_q = log_q_proxy + log_q_theta.double() - log_kernel
    return params, proxies, log_q, inside


# ---------------------------------------------------------------------------------------------
# the samplers
class DirectSampler:
    """q(θ | d) of a network without GNPE (NPE or FMPE): samples and exact log densities."""

    def __init__(self, model, net_input: NetworkInput, event: EventInput, event_time: float | None = None,
                 batch_size: int = DEFAULT_BATCH_SIZE, fixed: Mapping[str, float] | None = None):
        if net_input.proxies is not None:
            raise DataError("this network uses GNPE: use GNPESampler")
        self.net_input, self.event_time = net_input, event_time
        self.conditional = NetworkConditional(model, net_input, event, batch_size, fixed=fixed)

    def sample(self, num_samples: int, with_log_prob: bool = True) -> ProposalSamples:
        params, log_q = self.conditional(None, with_log_prob=with_log_prob, num_samples=num_samples)
        samples, valid = event_frame(params, self.net_input, self.event_time)
        log_prob = log_q.numpy() if log_q is not None else np.full(num_samples, np.nan)
        accepted = valid & (np.isfinite(log_prob) if with_log_prob else True)
        info = {"sampler": "direct", "num_samples": int(num_samples),
                "num_rejected_ra_range": int(np.count_nonzero(~valid))}
        return ProposalSamples(samples, log_prob, np.asarray(accepted), info)


class GNPESampler:
    """GNPE Gibbs sampling of one network for one event, and its importance-sampling proposal.

    Chains start from arrival times drawn from ``init`` (a :class:`DirectSampler` of the GNPE
    initialisation network, which infers ``{det}_time``), else from ``time_estimate`` ± ``time_spread``
    (s relative to the event time, uniform, independently per detector). ``fixed``: parameters the
    prior fixes (e.g. a known sky position), needed for t_I(θ) when the network does not infer them.
    """

    def __init__(self, model, net_input: NetworkInput, event: EventInput, event_time: float | None = None,
                 init: DirectSampler | None = None, time_estimate: float = 0.0,
                 time_spread: float = DEFAULT_TIME_SPREAD, batch_size: int = DEFAULT_BATCH_SIZE,
                 exact: bool = False, time_range: tuple[float, float] = (-0.1, 0.1),
                 fixed: Mapping[str, float] | None = None):
        if net_input.proxies is None:
            raise DataError("this network does not use GNPE: use DirectSampler")
        known = set(net_input.inference_parameters) | set(fixed or {})
        missing = [k for k in ("geocent_time", "ra", "dec") if k not in known]
        if missing:
            raise DataError(f"GNPE needs the arrival times t_I(θ), but {', '.join(missing)} is neither inferred by "
                            "the network nor fixed by the prior")
        self.net_input, self.event_time = net_input, event_time
        self.kernel = float(net_input.gnpe.kernel)
        self.init, self.time_estimate, self.time_spread = init, float(time_estimate), float(time_spread)
        if init is not None:
            missing = [f"{d}_time" for d in net_input.detectors
                       if f"{d}_time" not in init.net_input.inference_parameters]
            if missing:
                raise DataError(f"the GNPE initialisation network does not infer {', '.join(missing)}")
        margin = MAX_DETECTOR_DELAY + 2 * self.kernel + 0.05
        lo = min(time_range[0], time_estimate - time_spread) - margin
        hi = max(time_range[1], time_estimate + time_spread) + margin
        self.conditional = NetworkConditional(model, net_input, event, batch_size, exact, (lo, hi), fixed)

    def initial_arrival_times(self, num_chains: int) -> torch.Tensor:
        """Starting t_I (num_chains, n_det) in s relative to the event time."""
        n_det = len(self.net_input.detectors)
        if self.init is not None:
            params, _ = self.init.conditional(None, num_samples=num_chains)
            return torch.stack([params[f"{d}_time"] for d in self.net_input.detectors], dim=-1).double()
        u = torch.rand((num_chains, n_det), dtype=torch.float64)
        return self.time_estimate + self.time_spread * (2.0 * u - 1.0)

    def gibbs(self, num_chains: int, num_iterations: int = DEFAULT_GIBBS_ITERATIONS,
              progress: bool = False) -> GibbsResult:
        t0 = self.initial_arrival_times(num_chains)
        return gibbs_sample(self.conditional, self.conditional.arrival_times, t0, self.kernel, num_iterations,
                            progress)

    def sample(self, num_samples: int, num_iterations: int = DEFAULT_GIBBS_ITERATIONS,
               progress: bool = False) -> ProposalSamples:
        """Gibbs samples, one chain per sample (no log density: ``log_prob`` is NaN)."""
        g = self.gibbs(num_samples, num_iterations, progress)
        samples, valid = event_frame(g.params, self.net_input, self.event_time)
        info = {"sampler": "gnpe_gibbs", "gibbs_iterations": num_iterations, "gibbs_chains": num_samples,
                "gibbs_trace": g.trace}
        return ProposalSamples(samples, np.full(num_samples, np.nan), valid, info, g.proxies.numpy())

    def sample_with_log_prob(self, num_samples: int, num_iterations: int = DEFAULT_GIBBS_ITERATIONS,
                             num_chains: int | None = None, seed: int = 0, progress: bool = False,
                             max_components: int = 8) -> ProposalSamples:
        """Importance-sampling proposal on the extended space (see the module docstring).

        ``num_chains`` Gibbs chains (default ``num_samples``) give the proxies q(t̂) is fitted to;
        then ``num_samples`` fresh (t̂, θ) are drawn. ``seed`` seeds the density fit and the proxy
        draws (numpy); the network draws use torch's global generator.
        """
        num_chains = int(num_chains or num_samples)
        g = self.gibbs(num_chains, num_iterations, progress)
        keep = torch.isfinite(g.proxies).all(dim=-1).numpy()
        rng = np.random.default_rng([seed, 7])
        density = GaussianMixture.fit(g.proxies.numpy()[keep], rng, max_components=max_components)
        params, proxies, log_q, inside = extended_space_proposal(
            self.conditional, self.conditional.arrival_times, density, num_samples, self.kernel, rng
        )
        samples, valid = event_frame(params, self.net_input, self.event_time)
        inside = inside.numpy()
        log_q = log_q.numpy()
        accepted = valid & inside & np.isfinite(log_q)
        log_prob = np.where(accepted, log_q, np.nan)
        info = {
            "sampler": "gnpe_importance", "gibbs_iterations": int(num_iterations), "gibbs_chains": num_chains,
            "gibbs_trace": g.trace, "kernel": self.kernel, "proxy_density": density.to_dict(),
            "proxy_density_components": density.num_components,
            "num_outside_kernel": int(np.count_nonzero(~inside)),
            "num_rejected_ra_range": int(np.count_nonzero(inside & ~valid)),
            "fast_projection": self.conditional.fast is not None,
        }
        return ProposalSamples(samples, log_prob, accepted, info, proxies.numpy())

