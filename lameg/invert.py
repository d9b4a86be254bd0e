"""Co-registration, forward models and source inversions (laMEG 0.2.1 ``lameg.invert`` API).

The functions are implemented by the native backend; see :mod:`lameg.backends.native.forward`
and :mod:`lameg.backends.native.inverse`.
"""

from __future__ import annotations

from .backends.native.forward import (  # noqa: F401
    check_inversion_exists,
    coregister,
    coregister_mesh,
    get_lead_field_rms_diff,
    load_forward_model_vertices,
)
from .backends.native.inverse import (  # noqa: F401
    invert,
    invert_ebb,
    invert_ebb_layer,
    invert_msp,
    invert_sliding_window_ebb,
    invert_sliding_window_ebb_layer,
    invert_sliding_window_msp,
)
