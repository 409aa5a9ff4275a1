"""CNF integration against analytic references.

For a Gaussian target N(μ, Σ), the flow-matching marginal vector field of the path
x_t = (1 - (1 - σ_min) t) x_0 + t x_1 is linear and known in closed form:
v(x, t) = μ + K_t C_t⁻¹ (x - t μ), C_t = a_t² I + t² Σ, K_t = t Σ - (1 - σ_min) a_t I,
a_t = 1 - (1 - σ_min) t; it pushes N(0, I) to N(μ, Σ + σ_min² I) exactly. Samples and the
divergence-integrated log density must reproduce that Gaussian.
"""

import pytest
import torch

from dingo_gw.nn.config import ODEConfig
from dingo_gw.nn.ode import cnf_log_prob, cnf_sample, cnf_sample_and_log_prob, field_and_divergence

MU = torch.tensor([0.7, -1.3], dtype=torch.float64)
SIGMA = torch.tensor([[0.5, 0.3], [0.3, 0.8]], dtype=torch.float64)
SIGMA_MIN = 0.05


def analytic_field(t, x):
    t = float(t)
    a = 1 - (1 - SIGMA_MIN) * t
    eye = torch.eye(2, dtype=x.dtype)
    C = a**2 * eye + t**2 * SIGMA
    K = t * SIGMA - (1 - SIGMA_MIN) * a * eye
    M = K @ torch.linalg.inv(C)
    return MU + (x - t * MU) @ M.T



TARGET = torch.distributions.MultivariateNormal(MU, SIGMA + SIGMA_MIN**2 * torch.eye(2, dtype=torch.float64))


@pytest.mark.parametrize(
    "ode, atol",
    [
        (ODEConfig(method="dopri5", rtol=1e-7, atol=1e-8), 1e-5),
        (ODEConfig(method="rk4", steps=20), 1e-3),
        (ODEConfig(method="euler", steps=200), 0.06),
    ],
)
def test_log_density_of_linear_field_is_exact(ode, atol):
    gen = torch.Generator().manual_seed(0)
    x0 = torch.randn(500, 2, dtype=torch.float64, generator=gen)
    x1, log_q = cnf_sample_and_log_prob(analytic_field, x0, ode)
    assert torch.allclose(log_q, TARGET.log_prob(x1), atol=atol), (log_q - TARGET.log_prob(x1)).abs().max()
    # backward integration from given points
    pts = TARGET.sample((300,))
    assert torch.allclose(cnf_log_prob(analytic_field, pts, ode), TARGET.log_prob(pts), atol=atol)


def test_samples_of_linear_field_follow_target():
    gen = torch.Generator().manual_seed(1)
    x0 = torch.randn(20000, 2, dtype=torch.float64, generator=gen)
    x1 = cnf_sample(analytic_field, x0, ODEConfig(method="rk4", steps=20))
    assert torch.allclose(x1.mean(0), MU, atol=0.03)
    assert torch.allclose(torch.cov(x1.T), TARGET.covariance_matrix, atol=0.03)


def test_divergence_is_exact_trace_of_jacobian():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(5, 16), torch.nn.Tanh(), torch.nn.Linear(16, 4)).double()

    def field(t, x):
        return net(torch.cat([x, t.expand(x.shape[0], 1)], dim=-1))

    x = torch.randn(7, 4, dtype=torch.float64)
    t = torch.tensor(0.3, dtype=torch.float64)
    with torch.no_grad():  # must work without grad mode
        v, div = field_and_divergence(field, t, x)
    for n in range(7):
        jac = torch.autograd.functional.jacobian(lambda y: field(t, y.unsqueeze(0))[0], x[n])
        assert torch.isclose(div[n], torch.trace(jac), atol=1e-12)
    assert torch.allclose(v, field(t, x))
