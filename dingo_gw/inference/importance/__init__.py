"""Importance sampling of a proposal: :mod:`~.importance_sampling` (weights, n_eff, evidence, checkpointed
parts), :mod:`~.network_proposal` (a network proposal with rejected draws) and :mod:`~.parts` (parts as
cluster jobs, then one merge)."""
