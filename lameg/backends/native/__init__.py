"""Native (NumPy/SciPy) implementations of the façade operations, called by keyword only."""

from .forward import coregister_mesh
from .inverse import (
    invert,
    invert_ebb,
    invert_ebb_layer,
    invert_msp,
    invert_sliding_window_ebb,
    invert_sliding_window_ebb_layer,
    invert_sliding_window_msp,
)

__all__ = ["coregister_mesh", "invert", "invert_ebb", "invert_ebb_layer", "invert_msp",
           "invert_sliding_window_ebb", "invert_sliding_window_ebb_layer",
           "invert_sliding_window_msp"]
