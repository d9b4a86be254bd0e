"""Native (NumPy/SciPy) implementations of the façade operations."""
