"""The exact Gaussian likelihood of the strain and what evaluates or marginalises it.

:mod:`~dingo_gw.likelihood.response` (numpy detector response), :mod:`~dingo_gw.likelihood.gaussian`
(log L on the frequency grid), :mod:`~dingo_gw.likelihood.relative_binning` (fast approximation around a
fiducial waveform), :mod:`~dingo_gw.likelihood.phase_recovery` and
:mod:`~dingo_gw.likelihood.distance_recovery` (the phase and distance drawn from their conditional posterior).
"""
