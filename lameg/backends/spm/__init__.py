"""SPM implementations of the façade operations (``backend='spm'``), through :mod:`lameg.spm`.

Each function has the public laMEG 0.2.1 keyword names plus ``spm=`` (an engine from
:func:`lameg.spm.get_engine`) and leaves the dataset in the state the native back end leaves it
(``D.other.inv{k}`` in SPM's layout), so either back end reads the other's results.
"""

from ._common import engine_from
from .forward import SPM_FORWARD_MODEL_TYPES, coregister_mesh
from .inverse import (
    invert_ebb,
    invert_ebb_layer,
    invert_msp,
    invert_sliding_window_ebb,
    invert_sliding_window_ebb_layer,
    invert_sliding_window_msp,
)
from .opm import setup_opm_simulation
from .simulate import run_current_density_simulation, run_dipole_simulation

__all__ = ["engine_from", "coregister_mesh", "invert_ebb", "invert_ebb_layer", "invert_msp",
           "invert_sliding_window_ebb", "invert_sliding_window_ebb_layer",
           "invert_sliding_window_msp", "run_current_density_simulation",
           "run_dipole_simulation", "setup_opm_simulation", "SPM_FORWARD_MODEL_TYPES"]
