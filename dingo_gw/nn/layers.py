"""Residual MLP building blocks, optionally gated by a context vector (GLU-style)."""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

ACTIVATIONS = {
    "elu": nn.ELU,
    "relu": nn.ReLU,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "tanh": nn.Tanh,
    "leaky_relu": nn.LeakyReLU,
}


def activation(name: str) -> nn.Module:
    return ACTIVATIONS[name]()


class ResidualBlock(nn.Module):
    """x -> skip(x) + [gate ⊙] Linear(act(Linear(act(norm(x))))); gate = sigmoid(W_c c).

    ``skip`` is the identity, or a bias-free linear map when the width changes. The last
    linear layer starts near zero so every block starts close to the identity.
    """

    def __init__(self, in_dim: int, out_dim: int, act: str, dropout: float = 0.0, layer_norm: bool = True,
                 context_dim: int = 0):
        super().__init__()
        self.norm = nn.LayerNorm(in_dim) if layer_norm else nn.Identity()
        self.linear1 = nn.Linear(in_dim, out_dim)
        self.linear2 = nn.Linear(out_dim, out_dim)
        self.act = activation(act)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.skip = nn.Identity() if in_dim == out_dim else nn.Linear(in_dim, out_dim, bias=False)
        self.gate = nn.Linear(context_dim, out_dim) if context_dim > 0 else None
        nn.init.uniform_(self.linear2.weight, -1e-3, 1e-3)
        nn.init.zeros_(self.linear2.bias)

    def forward(self, x: torch.Tensor, gate_logits: torch.Tensor | None = None) -> torch.Tensor:
        h = self.linear1(self.act(self.norm(x)))
        h = self.linear2(self.dropout(self.act(h)))
        if gate_logits is not None:
            h = h * torch.sigmoid(gate_logits)
        return self.skip(x) + h


class DenseResidualNet(nn.Module):
    """in_dim -> Linear -> residual blocks of widths ``hidden_dims`` -> act -> Linear -> out_dim.

    With ``context_dim`` > 0 the context enters twice: added to the first hidden layer through
    a linear map, and as a sigmoid gate in every block. :meth:`context_cache` computes both
    once per context so that repeated evaluations (ODE solvers) reuse them.
    """

    def __init__(self, in_dim: int, hidden_dims: Sequence[int], out_dim: int, act: str = "elu",
                 dropout: float = 0.0, layer_norm: bool = True, context_dim: int = 0):
        super().__init__()
        hidden_dims = list(hidden_dims)
        self.context_dim = context_dim
        self.input = nn.Linear(in_dim, hidden_dims[0])
        self.context_input = nn.Linear(context_dim, hidden_dims[0], bias=False) if context_dim > 0 else None
        dims = [hidden_dims[0]] + hidden_dims
        self.blocks = nn.ModuleList(
            ResidualBlock(dims[i], dims[i + 1], act, dropout, layer_norm, context_dim) for i in range(len(hidden_dims))
        )
        self.final_act = activation(act)
        self.output = nn.Linear(hidden_dims[-1], out_dim)

    def context_cache(self, context: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """(input term, per-block gate logits) for context (B, context_dim)."""
        return self.context_input(context), [b.gate(context) for b in self.blocks]

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None, cache=None) -> torch.Tensor:
        if self.context_dim > 0 and cache is None:
            cache = self.context_cache(context)
        h = self.input(x)
        if cache is not None:
            h = h + cache[0]
        for i, block in enumerate(self.blocks):
            h = block(h, None if cache is None else cache[1][i])
        return self.output(self.final_act(h))
