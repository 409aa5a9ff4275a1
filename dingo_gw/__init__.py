"""dingo_gw: neural posterior estimation for gravitational-wave parameter estimation.

Data flow (each module imports only modules upstream of it):
bank (waveforms) -> noise -> pipeline -> nn -> train -> inference (sampler, importance
sampling) -> results.
"""

__version__ = "0.1.0"

# Version of the on-disk formats (banks, ASD datasets, network files). Readers refuse files
# written with a different major format version.
FORMAT_VERSION = 1
