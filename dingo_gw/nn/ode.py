"""Continuous normalising flow utilities: integrate a vector field and its divergence.

A vector field ``field(t, x)`` (t: 0-d tensor in [0, 1], x: (N, D)) -> (N, D) transports
x_0 ~ N(0, I) at t = 0 to x_1 at t = 1. The density obeys d log p_t(x_t)/dt = -div v(x_t, t), so

    log q(x_1) = log N(x_0; 0, I) - ∫_0^1 div v(x_t, t) dt.

The divergence is computed exactly: one vector-Jacobian product per dimension, batched with
``torch.func.vmap`` (cheap for the D <~ 20 parameters of GW inference). Works under
``torch.no_grad()`` (function transforms ignore it) but not under ``torch.inference_mode()``;
returned densities are detached (not differentiable w.r.t. the network weights).
"""

from __future__ import annotations

import math
from typing import Callable

import torch
from torchdiffeq import odeint

from dingo_gw.nn.config import ODEConfig

Field = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def standard_normal_log_prob(x: torch.Tensor) -> torch.Tensor:
    """log N(x; 0, I) summed over the last axis."""
    return -0.5 * (x**2).sum(-1) - 0.5 * x.shape[-1] * math.log(2 * math.pi)


def field_and_divergence(field: Field, t: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """v = field(t, x) (N, D) and its exact divergence tr(∂v/∂x) (N,) (rows independent)."""
    x = x.detach()
    v, vjp = torch.func.vjp(lambda y: field(t, y), x)
    D = x.shape[-1]
    eye = torch.eye(D, dtype=x.dtype, device=x.device).unsqueeze(1).expand(D, x.shape[0], D)
    (rows,) = torch.func.vmap(vjp)(eye)  # rows[i, n, :] = ∂v_i/∂x at sample n
    return v.detach(), rows.diagonal(dim1=0, dim2=2).sum(-1).detach()


def _solver_kwargs(ode: ODEConfig) -> dict:
    if ode.adaptive:
        return dict(method=ode.method, rtol=ode.rtol, atol=ode.atol)
    return dict(method=ode.method, options={"step_size": 1.0 / ode.steps})


def integrate(field: Field, x0: torch.Tensor, ode: ODEConfig, t0: float = 0.0, t1: float = 1.0) -> torch.Tensor:
    """x(t1) from x(t0) = x0 along dx/dt = field(t, x)."""
    t = torch.tensor([t0, t1], dtype=x0.dtype, device=x0.device)
    return odeint(lambda s, x: field(s, x), x0, t, **_solver_kwargs(ode))[-1]


def integrate_with_divergence(field: Field, x0: torch.Tensor, ode: ODEConfig, t0: float = 0.0,
                              t1: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """(x(t1), ∫_{t0}^{t1} div v(x_t, t) dt) along the same ODE, solved jointly."""

    def rhs(s, state):
        v, div = field_and_divergence(field, s, state[0])
        return v, div

    t = torch.tensor([t0, t1], dtype=x0.dtype, device=x0.device)
    zero = torch.zeros(x0.shape[0], dtype=x0.dtype, device=x0.device)
    xs, divs = odeint(rhs, (x0, zero), t, **_solver_kwargs(ode))
    return xs[-1], divs[-1]


def cnf_sample(field: Field, x0: torch.Tensor, ode: ODEConfig) -> torch.Tensor:
    """Samples x_1 from base samples x_0 (N, D)."""
    return integrate(field, x0, ode)


def cnf_sample_and_log_prob(field: Field, x0: torch.Tensor, ode: ODEConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """(x_1, log q(x_1)) from base samples x_0 ~ N(0, I)."""
    x1, div_integral = integrate_with_divergence(field, x0, ode, 0.0, 1.0)
    return x1, standard_normal_log_prob(x0) - div_integral


def cnf_log_prob(field: Field, x1: torch.Tensor, ode: ODEConfig) -> torch.Tensor:
    """log q(x_1) (N,): integrate backwards from t = 1 to 0 with the divergence."""
    x0, div_integral_back = integrate_with_divergence(field, x1, ode, 1.0, 0.0)
    # div_integral_back = ∫_1^0 div dt = -∫_0^1 div dt
    return standard_normal_log_prob(x0) + div_integral_back
