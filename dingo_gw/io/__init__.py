"""File input/output: atomic writes, HDF5 metadata helpers, strain readers."""
