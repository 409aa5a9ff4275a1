"""NPE and FMPE recover the analytic posterior of a linear-Gaussian simulator.

Simulator: θ ~ N(0, I_2), x = A θ + σ n with A (3x2), σ = 0.5, n ~ N(0, I_3). The posterior is
N(μ(x), Σ) with Σ = (I + AᵀA/σ²)⁻¹, μ(x) = Σ Aᵀ x / σ². Networks are tiny and trained for a few
hundred steps through the full PosteriorModel API (embedding with one "detector", one channel,
3 "bins"). Tolerances, for 4 observations and 2000 samples each (Monte Carlo error of the mean
≈ 0.022 σ): |mean - μ| < 0.25 posterior std per component, std within 15 %, correlation within
0.1 of the analytic value. The FMPE density must also integrate to 1 within 2 % on a 2-D grid,
and forward (sampling) and backward (log_prob) ODE integrations must agree.
"""

import math

import pytest
import torch

from dingo_gw.nn import FMPE, NPE, build_model, complete_model_config

A = torch.tensor([[1.0, 0.5], [-0.3, 1.2], [0.8, -0.7]])
SIGMA_N = 0.5
POST_COV = torch.linalg.inv(torch.eye(2) + A.T @ A / SIGMA_N**2)


def simulate(n, gen):
    theta = torch.randn(n, 2, generator=gen)
    x = theta @ A.T + SIGMA_N * torch.randn(n, 3, generator=gen)
    return theta, x.view(n, 1, 1, 3)


def posterior_mean(x):
    return (POST_COV @ A.T @ x.reshape(3)) / SIGMA_N**2


def train(model_type, steps, lr=5e-3, seed=0):
    torch.manual_seed(seed)
    cfg = complete_model_config(
        {
            "type": model_type,
            "embedding": {"n_basis": 4, "hidden_dims": [32], "output_dim": 16},
            "flow": {"hidden_features": [32, 32], "transforms": 3},
            "field": {"hidden_dims": [64, 64, 64], "time_features": 4},
        },
        theta_dim=2,
        proxy_dim=0,
        input_shape=(1, 1, 3),
    )
    model = build_model(cfg)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    gen = torch.Generator().manual_seed(seed + 1)
    for _ in range(steps):
        theta, x = simulate(256, gen)
        loss = model(theta, x)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    return model.eval()



@pytest.fixture(scope="module")
def npe():
    with torch.random.fork_rng():
        return train("npe", 500)


@pytest.fixture(scope="module")
def fmpe():
    with torch.random.fork_rng():
        return train("fmpe", 500)


@pytest.fixture(scope="module")
def observations():
    _, x = simulate(4, torch.Generator().manual_seed(123))
    return x


def check_posterior(samples, x):
    sd = POST_COV.diag().sqrt()
    rho = POST_COV[0, 1] / sd.prod()
    for k in range(len(x)):
        s = samples[k].double()
        mean_err = ((s.mean(0) - posterior_mean(x[k]).double()) / sd).abs()
        cov = torch.cov(s.T)
        std_ratio = cov.diag().sqrt() / sd
        corr = cov[0, 1] / cov.diag().prod().sqrt()
        assert (mean_err < 0.25).all(), f"obs {k}: mean error {mean_err} posterior stds"
        assert ((std_ratio - 1).abs() < 0.15).all(), f"obs {k}: std ratio {std_ratio}"
        assert abs(corr - rho) < 0.1, f"obs {k}: correlation {corr:.3f} vs {rho:.3f}"


def test_npe_matches_analytic_posterior(npe, observations):
    assert isinstance(npe, NPE)
    torch.manual_seed(5)
    samples = npe.sample(observations, num_samples=2000)
    assert samples.shape == (4, 2000, 2)
    check_posterior(samples, observations)


def test_fmpe_matches_analytic_posterior(fmpe, observations):
    assert isinstance(fmpe, FMPE)
    torch.manual_seed(6)
    samples = fmpe.sample(observations, num_samples=2000)
    check_posterior(samples, observations)


def grid_integral(model, x, n=50, **kwargs):
    """∫ q(θ|x) dθ on a square grid of ±7 posterior stds around the analytic mean."""
    mu = posterior_mean(x)
    half = 7 * POST_COV.diag().sqrt().max()
    axes = [torch.linspace(m - half, m + half, n) for m in mu]
    g0, g1 = torch.meshgrid(*axes, indexing="ij")
    theta = torch.stack([g0.reshape(-1), g1.reshape(-1)], dim=-1)
    with torch.no_grad():
        log_q = model.log_prob(theta, x.unsqueeze(0), **kwargs)
    cell = (axes[0][1] - axes[0][0]) * (axes[1][1] - axes[1][0])
    return float(log_q.double().exp().sum() * cell)


def test_fmpe_density_integrates_to_one(fmpe, observations):
    total = grid_integral(fmpe, observations[0])
    assert abs(total - 1) < 0.02, total


def test_npe_density_integrates_to_one(npe, observations):
    total = grid_integral(npe, observations[0], n=80)
    assert abs(total - 1) < 0.02, total


def test_fmpe_forward_and_backward_log_prob_agree(fmpe, observations):
    torch.manual_seed(7)
    x = observations[:1]
    theta, log_q = fmpe.sample_and_log_prob(x, num_samples=300)
    assert theta.shape == (1, 300, 2) and log_q.shape == (1, 300)
    with torch.no_grad():
        log_q_back = fmpe.log_prob(theta[0], x)
    assert torch.allclose(log_q[0], log_q_back, atol=2e-3), (log_q[0] - log_q_back).abs().max()
    # and both approximate the analytic log density where the posterior has mass
    mvn = torch.distributions.MultivariateNormal(posterior_mean(x[0]), POST_COV)
    assert (log_q[0] - mvn.log_prob(theta[0])).abs().median() < 0.1


def test_npe_sample_and_log_prob_consistent(npe, observations):
    torch.manual_seed(8)
    x = observations[:2]
    theta, log_q = npe.sample_and_log_prob(x, num_samples=200)
    with torch.no_grad():
        log_q2 = torch.stack([npe.log_prob(theta[k], x[k:k + 1]) for k in range(2)])
    assert torch.allclose(log_q, log_q2, atol=1e-4)
    assert math.isfinite(float(log_q.sum()))
