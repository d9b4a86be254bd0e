"""Implementations of the façade operations: ``native`` (NumPy/SciPy, default) and ``spm`` (optional)."""
