"""Inference on one event: from the analysed data to a weighted posterior.

Sub-packages by job (each imports only downward; see docs/architecture.md):

* :mod:`dingo_gw.inference.sampling` - proposal samples from a network (direct NPE/FMPE, GNPE Gibbs), with log q;
* :mod:`dingo_gw.inference.importance` - importance sampling of a proposal (weights, n_eff, evidence, parts jobs);
* :mod:`dingo_gw.inference.refine` - refinement of a weak proposal (tempered SMC, mixtures, fitted flows).

Modules: :mod:`~dingo_gw.inference.network` (the network file as inference needs it),
:mod:`~dingo_gw.inference.event_data` (whitened network input of the analysed data),
:mod:`~dingo_gw.inference.injection` (simulated events), :mod:`~dingo_gw.inference.outputs` (result files),
and :mod:`~dingo_gw.inference.analyze`, the driver ``strain -> PSD/whitening -> network sampling ->
importance sampling -> result``. The exact likelihood is in :mod:`dingo_gw.likelihood`.
"""
