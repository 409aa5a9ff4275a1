"""Refinement of a weak network proposal with the likelihood: :mod:`~.mixture`, :mod:`~.proposal_coordinates`,
:mod:`~.flow_density` -> :mod:`~.smc` -> :mod:`~.refine`, and :mod:`~.stage` (the analysis' refinement step)."""
