"""NPE: a conditional rational-quadratic neural spline flow (zuko) on the embedding's context.

Loss: -mean log q(θ | context). The splines act on [-5, 5] (identity outside), which suits
standardised θ. Coupling masks are random half splits drawn from ``flow.seed`` so that the
architecture is reproducible from the config alone.
"""

from __future__ import annotations

from functools import partial

import torch
import zuko
from zuko.flows.autoregressive import MaskedAutoregressiveTransform
from zuko.flows.coupling import GeneralCouplingTransform
from zuko.transforms import MonotonicRQSTransform

from dingo_gw.nn.config import FlowConfig, ModelConfig
from dingo_gw.nn.layers import ACTIVATIONS
from dingo_gw.nn.posterior import PosteriorModel


def build_flow(features: int, context: int, config: FlowConfig) -> zuko.lazy.Flow:
    """A zuko spline flow over ``features`` dims conditioned on ``context`` features."""
    gen = torch.Generator().manual_seed(config.seed)
    shapes = [(config.bins,), (config.bins,), (config.bins - 1,)]
    kwargs = dict(
        univariate=partial(MonotonicRQSTransform, slope=1e-3),
        shapes=shapes,
        hidden_features=list(config.hidden_features),
        activation=ACTIVATIONS[config.activation],
    )
    transforms = []
    for i in range(config.transforms):
        if config.kind == "coupling" and features > 1:
            perm = torch.randperm(features, generator=gen)
            mask = perm < features // 2
            transforms.append(GeneralCouplingTransform(features, context, mask=mask, **kwargs))
        else:
            order = torch.arange(features) if i % 2 == 0 else torch.arange(features).flip(0)
            transforms.append(MaskedAutoregressiveTransform(features, context, order=order, **kwargs))
    base = zuko.lazy.UnconditionalDistribution(
        zuko.distributions.DiagNormal, torch.zeros(features), torch.ones(features), buffer=True
    )
    return zuko.lazy.Flow(transforms, base)


class NPE(PosteriorModel):
    """Embedding + conditional neural spline flow."""

    def __init__(self, config: ModelConfig):
        super().__init__(config)
        self.flow = build_flow(self.theta_dim, self.context_dim, config.flow)

    def loss_from_context(self, theta, context):
        return -self.flow(context).log_prob(theta).mean()

    def sample_from_context(self, context, num_samples: int):
        return self.flow(context).sample((num_samples,)).transpose(0, 1)

    def sample_and_log_prob_from_context(self, context, num_samples: int):
        theta, log_prob = self.flow(context).rsample_and_log_prob((num_samples,))
        return theta.transpose(0, 1), log_prob.transpose(0, 1)

    def log_prob_from_context(self, theta, context):
        return self.flow(context).log_prob(theta)
