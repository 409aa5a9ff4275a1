"""Proposal samples from a network: :mod:`~.gnpe_sampler` (direct NPE/FMPE and GNPE Gibbs sampling) and
:mod:`~.proposal` (the analysis' sampling step: sampler choice, prior completion)."""
