"""Versions of the packages that shape results, for file metadata."""

from __future__ import annotations

import importlib.metadata


def package_versions() -> dict[str, str]:
    """Installed versions of dingo_gw and the libraries its results depend on."""
    out = {}
    for name in ("dingo_gw", "numpy", "scipy", "torch", "lalsuite", "bilby", "gwpy", "h5py", "zuko", "torchdiffeq"):
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = "not installed"
    try:
        import lal
        import lalsimulation

        out["lal"] = lal.__version__
        out["lalsimulation"] = lalsimulation.__version__
    except Exception:  # pragma: no cover - lalsuite is a dependency
        pass
    return out
