"""The analysis' network-sampling step: proposal samples with log q from GNPE (Gibbs + the extended-space
proposal) or direct NPE/FMPE sampling, and prior parameters the network does not infer completed from
their prior. ``settings``: an :class:`dingo_gw.inference.analyze.AnalysisSettings`."""

from __future__ import annotations

import math

import numpy as np

from dingo_gw.errors import ConfigError
from dingo_gw.inference.network import AnalysisNetwork
from dingo_gw.inference.sampling.gnpe_sampler import DirectSampler, GNPESampler, ProposalSamples
from dingo_gw.likelihood.distance_recovery import DISTANCE_KEY, distance_recoverable


#: Gibbs chains used to fit the proxy density by default (at most the number of samples).
DEFAULT_GIBBS_CHAINS = 2000


def _time_range(prior) -> tuple[float, float]:
    p = prior.get("geocent_time") if prior is not None else None
    lo, hi = getattr(p, "minimum", None), getattr(p, "maximum", None)
    if lo is None or hi is None or not (np.isfinite(lo) and np.isfinite(hi)):
        return (-0.1, 0.1)
    return (float(lo), float(hi))


def check_sky_rotation(network: AnalysisNetwork, event_time: float) -> None:
    """A network used at another time than its reference time rotates ra: its prior must be uniform on [0, 2π)."""
    import bilby

    from dingo_gw.detectors import gmst

    if "ra" not in network.net_input.inference_parameters or "ra" not in network.prior:
        return
    if abs(gmst(event_time) - network.net_input.network.gmst_ref) < 1e-12:
        return
    p = network.prior["ra"]
    if not (type(p) is bilby.core.prior.Uniform and abs(p.minimum) < 1e-12 and abs(p.maximum - 2 * math.pi) < 1e-9):
        raise ConfigError(f"the network's ra prior {p!r} is not uniform on [0, 2π): it cannot analyse data at another "
                          "sidereal time than its reference time")


def sample_proposal(network: AnalysisNetwork, event: EventData, settings: AnalysisSettings) -> ProposalSamples:
    """Proposal samples with log q: GNPE (Gibbs + extended space) or direct sampling."""
    import bilby

    check_sky_rotation(network, event.trigger_time)
    n = settings.num_samples
    fixed = {k: float(p.peak) for k, p in network.prior.items() if isinstance(p, bilby.core.prior.DeltaFunction)}
    if network.net_input.proxies is None:
        sampler = DirectSampler(network.model, network.net_input, event.event_input, event.trigger_time,
                                settings.batch_size)
        return sampler.sample(n, with_log_prob=True)
    init = None
    if network.init_model is not None and settings.gnpe_init == "network":
        init = DirectSampler(network.init_model, network.init_input, event.event_input, event.trigger_time,
                             settings.batch_size)
    sampler = GNPESampler(
        network.model, network.net_input, event.event_input, event.trigger_time, init=init,
        time_spread=settings.time_spread, batch_size=settings.batch_size, exact=settings.exact_projection,
        time_range=_time_range(network.prior), fixed=fixed,
    )
    chains = settings.gibbs_chains or min(n, DEFAULT_GIBBS_CHAINS)
    proposal = sampler.sample_with_log_prob(n, settings.gibbs_iterations, num_chains=chains, seed=settings.seed,
                                            progress=settings.progress)
    proposal.info["initialisation"] = "init network" if init is not None else \
        f"trigger time ± {settings.time_spread} s"
    return proposal


def complete_from_prior(proposal: ProposalSamples, prior, rng: np.random.Generator) -> list[str]:
    """Draw prior parameters the network does not infer (other than the phase) from their prior.

    q(θ_net, θ_rest) = q(θ_net | d) π(θ_rest) is an exact proposal: log π(θ_rest) is added to
    log q. Only independent one-dimensional priors not involved in the prior's constraints
    (masses) can be completed this way. Returns the completed names. The luminosity distance of a
    network that does not infer it is left to importance sampling, which draws it with the phase
    from its conditional posterior (distance marginalisation, exact weights) when the prior allows.
    """
    import bilby

    recovered = {"phase"}
    if "phase" not in proposal.samples and distance_recoverable(prior):
        recovered.add(DISTANCE_KEY)
    has_constraints = any(isinstance(p, bilby.core.prior.Constraint) for p in prior.values())
    mass_keys = {"chirp_mass", "mass_ratio", "mass_1", "mass_2", "total_mass", "symmetric_mass_ratio"}
    done = []
    n = len(proposal)
    for key, p in prior.items():
        if key in proposal.samples or key in recovered or isinstance(
                p, (bilby.core.prior.Constraint, bilby.core.prior.DeltaFunction)):
            continue
        if isinstance(p, bilby.core.prior.JointPrior) or (has_constraints and key in mass_keys):
            raise ConfigError(f"the network does not infer {key}, and its prior cannot be sampled on its own")
        u = rng.uniform(size=n)
        x = np.asarray(p.rescale(u), dtype=float)
        proposal.samples[key] = x
        proposal.log_prob = proposal.log_prob + np.asarray(p.ln_prob(x), dtype=float)
        done.append(key)
    return done
