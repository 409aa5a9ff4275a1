"""GNPE Gibbs sampling and proposal densities on problems with known answers.

- Gibbs sampling with the exact conditional of a Gaussian toy posterior over two arrival times
  has that posterior as its stationary distribution.
- The extended-space importance weights (fitted q(t̂), imperfect q(θ | t̂) that also leaks outside
  the kernel) recover the analytic posterior moments and evidence.
- Proposal log-densities of real (untrained) networks, through standardisation, the GNPE time
  shift and the rotation to the event's sky frame, are normalised: E_q[1_A / q] = volume(A).
- The interpolated first embedding layer equals the network's own on shifted data.
"""

import math

import bilby
import numpy as np
import pytest
import torch
from scipy import stats

from dingo_gw.detectors import gmst
from dingo_gw.domain import FrequencyDomain
from dingo_gw.errors import DataError
from dingo_gw.inference.importance.network_proposal import importance_sample_proposal
from dingo_gw.inference.sampling.gnpe_sampler import (
    DirectSampler, GaussianMixture, GNPESampler, NetworkConditional, ProposalSamples, ShiftedProjection,
    event_frame, extended_space_proposal, gibbs_sample,
)
from dingo_gw.nn import build_model, complete_model_config
from dingo_gw.pipeline import GNPESettings, NetworkInput, Standardization

KAPPA = 1e-3
MU = np.array([0.003, -0.002])  # posterior means of the two arrival times (s)
SIG = np.array([0.0015, 0.0008])  # posterior standard deviations (s)


class TruncatedNormalConditional:
    """Toy q(θ | t̂) for θ = arrival times (t1, t2): independent normals N(mean, std²) truncated to
    [t̂_I - half_width, t̂_I + half_width]. With mean = MU, std = SIG, half_width = κ it is the
    exact conditional of p(θ) = N(MU, SIG²) under the uniform GNPE kernel."""

    def __init__(self, mean, std, half_width, seed):
        self.mean, self.std, self.w = np.asarray(mean), np.asarray(std), half_width
        self.rng = np.random.default_rng(seed)

    def __call__(self, proxies, with_log_prob=False):
        t = proxies.numpy()
        a = (t - self.w - self.mean) / self.std
        b = (t + self.w - self.mean) / self.std
        x = stats.truncnorm.rvs(a, b, loc=self.mean, scale=self.std, random_state=self.rng)
        params = {"t1": torch.as_tensor(x[:, 0]), "t2": torch.as_tensor(x[:, 1])}
        log_q = None
        if with_log_prob:
            log_q = torch.as_tensor(stats.truncnorm.logpdf(x, a, b, loc=self.mean, scale=self.std).sum(-1))
        return params, log_q

    @staticmethod
    def arrival_times(params):
        return torch.stack([params["t1"], params["t2"]], dim=-1)


def test_gibbs_chains_reach_the_target_posterior():
    torch.manual_seed(0)
    cond = TruncatedNormalConditional(MU, SIG, KAPPA, seed=1)
    n = 4000
    start = torch.as_tensor(MU) + 0.008 * (2 * torch.rand(n, 2, dtype=torch.float64) - 1)  # far from the bulk
    g = gibbs_sample(cond, cond.arrival_times, start, KAPPA, num_iterations=30)
    x = g.arrival_times.numpy()
    assert np.all(np.abs(x.mean(0) - MU) < 4 * SIG / np.sqrt(n))
    assert np.all(np.abs(x.std(0) / SIG - 1) < 0.06)
    for i in range(2):
        assert stats.kstest(x[:, i], "norm", args=(MU[i], SIG[i])).pvalue > 1e-3
    # the proxies of the final iteration lie within the kernel of the chains' previous arrival times
    assert torch.all((g.proxies - g.arrival_times).abs() <= KAPPA + 1e-15)
    assert len(g.trace) == 30


def test_gibbs_with_few_iterations_has_not_converged():
    """The convergence test above can fail: after one iteration the chains still remember the start."""
    torch.manual_seed(0)
    cond = TruncatedNormalConditional(MU, SIG, KAPPA, seed=1)
    start = torch.full((2000, 2), 0.02, dtype=torch.float64)
    g = gibbs_sample(cond, cond.arrival_times, start, KAPPA, num_iterations=1)
    assert np.all(np.abs(g.arrival_times.numpy().mean(0) - MU) > 10 * SIG)


class ToyLikelihood:
    """log L = LOG_C - 1/2 Σ ((t_I - MU_I) / SIG_I)²; with a uniform prior on [-0.05, 0.05]² the
    evidence is exp(LOG_C) · 2π SIG_1 SIG_2 / 0.1² (the Gaussian lies well inside the box)."""

    LOG_C = -3.0
    trigger_time = 0.0
    fingerprint = "toy"

    def log_likelihood(self, params, workers=1, chunk_size=256, progress=False):
        x = np.stack([params["t1"], params["t2"]], axis=-1)
        return self.LOG_C - 0.5 * np.sum(((x - MU) / SIG) ** 2, axis=-1)

    def log_noise_evidence(self):
        return -10.0


def toy_prior():
    return bilby.core.prior.PriorDict({k: bilby.core.prior.Uniform(-0.05, 0.05, name=k) for k in ("t1", "t2")})


def test_extended_space_weights_are_exact(tmp_path):
    torch.manual_seed(2)
    # an imperfect network: shifted, too wide, and leaking outside the kernel (half-width 1.4 κ)
    cond = TruncatedNormalConditional(MU + 0.5 * SIG, 1.3 * SIG, 1.4 * KAPPA, seed=3)
    start = torch.as_tensor(MU) + 0.003 * (2 * torch.rand(3000, 2, dtype=torch.float64) - 1)
    g = gibbs_sample(cond, cond.arrival_times, start, KAPPA, num_iterations=20)
    rng = np.random.default_rng(4)
    density = GaussianMixture.fit(g.proxies.numpy(), rng)
    params, proxies, log_q, inside = extended_space_proposal(cond, cond.arrival_times, density, 20000, KAPPA, rng)
    assert 0.05 < 1 - inside.double().mean() < 0.6  # some draws fall outside the kernel
    samples = {k: v.numpy() for k, v in params.items()}
    proposal = ProposalSamples(samples, np.where(inside, log_q.numpy(), np.nan), inside.numpy())
    result = importance_sample_proposal(proposal, toy_prior(), ToyLikelihood(), seed=0)
    assert result.ok and result.num_samples == 20000
    w = result.weights
    assert np.all(np.isfinite(w)) and np.all(w[~inside.numpy()] == 0)
    n_eff = result.n_eff
    for i, k in enumerate(("t1", "t2")):
        mean = np.sum(w * result.samples[k])
        std = np.sqrt(np.sum(w * (result.samples[k] - mean) ** 2))
        assert abs(mean - MU[i]) < 5 * SIG[i] / np.sqrt(n_eff)
        assert abs(std / SIG[i] - 1) < 0.05
    log_z = ToyLikelihood.LOG_C + math.log(2 * math.pi * SIG[0] * SIG[1] / 0.1**2)
    assert abs(result.log_evidence - log_z) < 4 * result.log_evidence_err + 0.01
    # the kernel term matters: without it the evidence is off by n_det log 2κ
    assert abs(2 * math.log(2 * KAPPA)) > 10 * result.log_evidence_err
    # rejected draws stay in the file (weight zero, likelihood not evaluated) and bilby reads it
    saved = bilby.core.result.read_in_result(str(result.save(tmp_path, "toy")))
    nested = saved.nested_samples
    assert len(nested) == 20000 and np.isnan(nested["log_likelihood"][~inside.numpy()]).all()
    assert np.allclose(nested["weights"].sum(), 1.0) and saved.log_evidence == pytest.approx(result.log_evidence)


def test_gaussian_mixture_fit_matches_a_known_mixture():
    rng = np.random.default_rng(0)
    true = GaussianMixture([0.3, 0.7], [[-2.0, 0.0], [1.0, 0.5]], [np.eye(2) * 0.2, [[0.5, 0.2], [0.2, 0.3]]],
                           shift=[0.01, -0.02], scale=[1e-3, 2e-3])
    x = true.sample(4000, rng)
    fit = GaussianMixture.fit(x, np.random.default_rng(1))
    grid = true.sample(2000, np.random.default_rng(2))
    # the fitted log density agrees with the truth where the data are
    assert np.median(np.abs(fit.log_prob(grid) - true.log_prob(grid))) < 0.1
    # and is normalised: Monte Carlo estimate of ∫ q_fit over a box vs its own samples
    lo, hi = np.quantile(grid, 0.001, axis=0), np.quantile(grid, 0.999, axis=0)
    u = rng.uniform(lo, hi, size=(200000, 2))
    integral = np.mean(np.exp(fit.log_prob(u))) * np.prod(hi - lo)
    draws = fit.sample(20000, rng)
    inside = np.mean(np.all((draws >= lo) & (draws <= hi), axis=1))
    assert abs(integral - 1) < 0.03 and inside > 0.9
    with pytest.raises(DataError):
        GaussianMixture.fit(np.full((3, 2), np.nan), rng)


# -- real networks (untrained: their densities are normalised whatever the weights) ---------------
DOMAIN = FrequencyDomain(20.0, 64.0, 0.5, 0.95)
DETS = ["H1", "L1"]
REF_TIME = 1126259462.4


def _network(keys, means, stds, gnpe: bool, seed=0, kind="npe"):
    std = Standardization(keys, dict(zip(keys, means)), dict(zip(keys, stds)))
    pstd = Standardization(["L1_time_proxy"], {"L1_time_proxy": 0.0}, {"L1_time_proxy": 0.005}) if gnpe else None
    inp = NetworkInput(DOMAIN, DETS, REF_TIME, std, {"H1": 1e-23, "L1": 2e-23}, GNPESettings() if gnpe else None, pstd)
    cfg = complete_model_config({"type": kind, "embedding": {"n_basis": 6, "hidden_dims": [32], "output_dim": 8},
                                 "flow": {"transforms": 2, "bins": 4, "hidden_features": [16, 16]},
                                 "field": {"hidden_dims": [32, 32], "ode": {"method": "rk4", "steps": 8}}},
                                theta_dim=len(keys), proxy_dim=inp.proxy_dim, input_shape=inp.input_shape)
    torch.manual_seed(seed)
    model = build_model(cfg).eval()
    rng = np.random.default_rng(seed)
    n = len(DOMAIN)
    asd = {d: np.full(n, 1e-23) * (1 + 0.3 * np.cos(DOMAIN.frequencies / 7)) for d in DETS}
    strain = {d: asd[d] * DOMAIN.noise_std * (rng.normal(size=n) + 1j * rng.normal(size=n)) for d in DETS}
    return model, inp, inp.event_input(strain, asd, segment_start=-1.5)


def _box_volume_estimate(samples, log_q, box):
    """E_q[1_A(θ) / q(θ)] = volume of A, for a box A = {k: (lo, hi)}."""
    inside = np.ones(len(log_q), dtype=bool)
    for k, (lo, hi) in box.items():
        inside &= (samples[k] >= lo) & (samples[k] <= hi)
    terms = np.where(inside, np.exp(-log_q), 0.0)
    return terms.mean(), terms.std() / np.sqrt(len(terms))


@pytest.mark.parametrize("gnpe,kind", [(True, "npe"), (False, "npe"), (False, "fmpe")])
def test_proposal_log_density_is_normalised_in_physical_units(gnpe, kind):
    keys = ["geocent_time", "ra", "chirp_mass"]
    model, inp, event = _network(keys, [0.01, 3.0, 30.0], [0.004, 1.2, 5.0], gnpe, kind=kind)
    event_time = REF_TIME + 3600.0  # another sidereal time: ra is rotated
    torch.manual_seed(1)
    n = 40000 if kind == "npe" else 8000
    if gnpe:
        cond = NetworkConditional(model, inp, event, window=(-0.1, 0.1))
        proxies = torch.tensor([[0.004, 0.0093]], dtype=torch.float64).expand(n, 2)
        params, log_q = cond(proxies, with_log_prob=True)
    else:
        params, log_q = DirectSampler(model, inp, event).conditional(None, with_log_prob=True, num_samples=n)
    samples, valid = event_frame(params, inp, event_time)
    log_q = np.where(valid, log_q.numpy(), np.inf)
    ra0 = np.median(samples["ra"])
    t0 = np.median(samples["geocent_time"])
    box = {"geocent_time": (t0 - 0.004, t0 + 0.004), "ra": (max(ra0 - 0.8, 0), min(ra0 + 0.8, 2 * np.pi)),
           "chirp_mass": (26.0, 34.0)}
    volume = np.prod([hi - lo for lo, hi in box.values()])
    estimate, err = _box_volume_estimate(samples, log_q, box)
    assert abs(estimate / volume - 1) < max(4 * err / volume, 0.03)
    # rotation to the event's sky frame: ra_sky = ra_net + GMST(event) - GMST(ref)
    shift = gmst(event_time) - gmst(REF_TIME)
    ra_net = params["ra"].numpy()[valid]
    assert np.allclose(np.mod(ra_net + shift, 2 * np.pi), samples["ra"][valid])
    assert np.all((ra_net >= 0) & (ra_net < 2 * np.pi))


def test_interpolated_projection_equals_the_network_layer():
    model, inp, event = _network(["geocent_time", "ra"], [0.0, 3.0], [0.01, 1.5], gnpe=True)
    fast = ShiftedProjection(model, inp, event, window=(-0.15, 0.15))
    proxies = 0.28 * torch.rand(300, 2, dtype=torch.float64) - 0.14
    with torch.no_grad():
        data, _ = inp.network_inputs(event, proxies, dtype=torch.float64)
        proj = model.embedding.projection
        W, b = proj.weight.double(), proj.bias.double()
        x = data.reshape(len(proxies), 2, -1).transpose(0, 1)
        exact = torch.baddbmm(b, x, W).transpose(0, 1).reshape(len(proxies), -1)
    got = fast.features(proxies)
    assert torch.max(torch.abs(got - exact)) < 2e-5 * torch.max(torch.abs(exact))
    # proxies outside the tabulated window use the exact path
    cond = NetworkConditional(model, inp, event, window=(-0.01, 0.01))
    cond_exact = NetworkConditional(model, inp, event, exact=True)
    far = torch.tensor([[0.05, 0.06], [0.001, 0.002]], dtype=torch.float64)
    assert torch.allclose(cond.context(far), cond_exact.context(far), atol=1e-4)


def test_gnpe_sampler_runs_and_respects_the_kernel():
    model, inp, event = _network(["geocent_time", "ra", "dec"], [0.0, 3.0, 0.0], [0.003, 1.5, 0.5], gnpe=True)
    torch.manual_seed(0)
    sampler = GNPESampler(model, inp, event, REF_TIME, time_estimate=0.0, time_spread=0.01)
    p = sampler.sample_with_log_prob(3000, num_iterations=5, num_chains=1500, seed=0)
    assert len(p) == 3000 and p.proxies.shape == (3000, 2)
    acc = p.accepted
    assert np.all(np.isfinite(p.log_prob[acc])) and np.all(np.isnan(p.log_prob[~acc]))
    # accepted samples have arrival times within κ of their proxies
    t = inp.arrival_times({k: torch.as_tensor(v) for k, v in p.samples.items()}).numpy()  # event = ref time
    assert np.all(np.abs(t[acc] - p.proxies[acc]) <= KAPPA + 1e-12)
    assert p.info["num_outside_kernel"] == int(np.count_nonzero(np.any(np.abs(t - p.proxies) > KAPPA, axis=1)))
    with pytest.raises(DataError):
        DirectSampler(model, inp, event)
