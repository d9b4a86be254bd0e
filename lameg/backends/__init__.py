"""Engines behind the façade functions: ``native`` (NumPy/SciPy, default) and ``spm`` (real SPM).

Each back end is a module with one function per façade operation (``coregister_mesh``,
``invert_ebb``, ``invert_msp``, ...), called with keyword arguments only; the SPM one also
receives ``spm=`` (a running engine, see :mod:`lameg.spm`). :func:`select_backend` is the one
place that turns the public ``backend=``/``spm_instance=`` arguments into that choice, so a
passed SPM instance is never ignored.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

from ..exceptions import LamegNotImplementedError, LamegValueError

__all__ = ["BACKENDS", "select_backend"]

#: Accepted values of ``backend=``.
BACKENDS = ("native", "spm")


def select_backend(backend: str | None, spm_instance: Any = None
                   ) -> tuple[ModuleType, dict[str, Any]]:
    """The implementation module for ``backend`` and the extra keyword arguments it needs.

    Parameters
    ----------
    backend : {'native', 'spm'} or None
        None means ``'spm'`` when ``spm_instance`` is given, ``'native'`` otherwise.
    spm_instance : object or None
        A running SPM engine (laMEG's ``spm_standalone`` instance or a
        :class:`lameg.spm.SPM`); only valid with the SPM back end.

    Returns
    -------
    module : module
        ``lameg.backends.native`` or ``lameg.backends.spm``.
    extra : dict
        ``{}`` for native; ``{'spm': engine}`` for SPM.
    """
    if backend is None:
        backend = "spm" if spm_instance is not None else "native"
    if backend not in BACKENDS:
        raise LamegValueError(f"backend={backend!r} is not valid; choose one of {list(BACKENDS)}")
    if backend == "native":
        if spm_instance is not None:
            raise LamegValueError(
                "spm_instance was given with backend='native': pass backend='spm' (or leave "
                "backend unset) to run SPM, or drop spm_instance")
        return importlib.import_module(".native", __name__), {}
    try:
        module = importlib.import_module(".spm", __name__)
    except ModuleNotFoundError as err:
        if err.name and err.name.startswith("lameg"):
            raise LamegNotImplementedError(
                "the SPM back end is not available in this installation; use backend='native'"
            ) from None
        raise
    return module, {"spm": module.engine_from(spm_instance)}
