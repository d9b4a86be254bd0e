"""One small adapter in front of SPM: call a function, evaluate code, run a ``matlabbatch``.

Two engines implement it:

* :class:`OctaveSPM` -- GNU Octave running an SPM source tree, through ``oct2py``. The tree is
  prepared once in lameg's cache (:mod:`lameg.spm.prepare`).
* :class:`StandaloneSPM` -- the compiled SPM with a MATLAB Runtime (``spm-python``'s
  ``spm_standalone``), as laMEG 0.2.1 drives it. Only :meth:`SPMEngine.call` and
  :meth:`SPMEngine.eval` differ; batches and the SPM back end's m-helpers are shared.

Everything the SPM back end does goes through :meth:`~SPMEngine.call`,
:meth:`~SPMEngine.eval` and :meth:`~SPMEngine.run_batch`.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import numpy as np

from .._utils import logger
from .errors import SPMError, SPMSetupError

__all__ = ["SPMEngine", "OctaveSPM", "StandaloneSPM", "MFILES_DIR", "OCTAVE_COMPAT_DIR",
           "to_matlab_batch"]

#: Folder of lameg's own m-files (thin helpers around documented SPM functions).
MFILES_DIR = Path(__file__).resolve().parent / "mfiles"
#: Octave-only compatibility m-files (MATLAB functions and options Octave 7 lacks, and a
#: display-free forward-model check); added to the path after SPM by :class:`OctaveSPM`.
OCTAVE_COMPAT_DIR = MFILES_DIR / "octave_compat"


def _q(s: str | os.PathLike) -> str:
    """A MATLAB single-quoted string literal."""
    return "'" + str(s).replace("'", "''") + "'"


def to_matlab_batch(job: dict) -> dict:
    """Wrap one job dict as ``{'matlabbatch': [job]}`` for :func:`scipy.io.savemat`.

    Parameters
    ----------
    job : dict
        One batch job in ``matlabbatch`` layout, e.g. ``{'spm': {'meeg': {...}}}``.

    Returns
    -------
    dict
        ``{'matlabbatch': cell}``, the cell a 1-element object array holding ``job``.
    """
    cell = np.empty((1,), dtype=object)
    cell[0] = job
    return {"matlabbatch": cell}


class SPMEngine:
    """Interface of an SPM engine (see the module docstring).

    Subclasses implement :meth:`call`, :meth:`eval` and :meth:`close`.
    """

    #: Short engine name stored with results (``'octave'`` or ``'standalone'``).
    name = "spm"

    def call(self, function: str, *args, nargout: int = 1):
        """Call an SPM/MATLAB function.

        Parameters
        ----------
        function : str
            Function name on the engine's path.
        *args
            Arguments (numbers, strings, NumPy arrays).
        nargout : int
            Number of outputs; 0 returns None, 1 the value, more a tuple.

        Returns
        -------
        object
            None (``nargout=0``), the output (1) or a tuple of ``nargout`` outputs, as the
            engine converts them (NumPy arrays, floats, strings).

        Raises
        ------
        SPMError
            When the function fails; the message holds the engine's error (and, for Octave,
            the last lines SPM printed).
        """
        raise NotImplementedError

    def eval(self, code: str) -> None:
        """Evaluate MATLAB code (no output returned).

        Parameters
        ----------
        code : str
            MATLAB statements, evaluated in the engine's base workspace.

        Raises
        ------
        SPMError
            When the code fails.
        """
        raise NotImplementedError

    def close(self) -> None:
        """Stop the engine (a no-op for engines lameg did not start)."""

    # --- shared ------------------------------------------------------------------------------

    def _tmpdir(self) -> Path:
        from .prepare import spm_cache_root

        d = spm_cache_root() / "jobs"
        d.mkdir(parents=True, exist_ok=True)
        return d

    def run_batch(self, job: dict) -> None:
        """Run one SPM batch job (``matlabbatch{1} = job``) with ``spm_jobman('run', ...)``.

        Parameters
        ----------
        job : dict
            Nested dict in ``matlabbatch`` layout (strings, floats, NumPy arrays; object arrays
            for cells), as laMEG builds it, e.g. ``{'spm': {'meeg': {'source': {...}}}}``.
        """
        from scipy.io import savemat

        fd, name = tempfile.mkstemp(suffix=".mat", prefix="batch_", dir=self._tmpdir())
        os.close(fd)
        try:
            savemat(name, to_matlab_batch(job))
            self.eval(f"lameg_spm_run_batch({_q(name)});")
        finally:
            Path(name).unlink(missing_ok=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


def _engine_doc(method):
    """Give an engine's implementation of an interface method the interface's docstring."""
    method.__doc__ = getattr(SPMEngine, method.__name__).__doc__
    return method


class OctaveSPM(SPMEngine):
    """SPM on GNU Octave through ``oct2py``.

    Parameters
    ----------
    spm_dir : path or None
        SPM source folder or archive (default ``$LAMEG_SPM_DIR``); prepared once into the cache
        (MEX build, shim) -- the folder itself is never modified.
    octave : path or None
        Octave executable (default ``$OCTAVE_EXECUTABLE``, else ``octave-cli`` on ``PATH``).
    session : oct2py.Oct2Py or None
        An existing session to use instead of starting one (it is not closed by :meth:`close`).
    start_timeout : float
        Seconds allowed for starting Octave and loading SPM's defaults.
    verbose : bool
        Progress messages while preparing the tree.

    Raises
    ------
    SPMSetupError
        Octave or ``oct2py`` missing, SPM folder missing or not an SPM tree, MEX build failing,
        or SPM not loading in Octave.
    """

    name = "octave"

    def __init__(self, spm_dir=None, *, octave=None, session=None, start_timeout: float = 180.0,
                 verbose: bool = True):
        from .prepare import find_octave, prepare_spm_tree

        try:
            import oct2py
        except ImportError as exc:
            raise SPMSetupError("the Octave engine needs oct2py: pip install 'lameg[spm]'"
                                ) from exc
        self._oct2py = oct2py
        exe, _ = find_octave(octave)
        self.tree = prepare_spm_tree(spm_dir, octave=exe, verbose=verbose)
        self._own = session is None
        t0 = time.monotonic()
        if session is None:
            try:
                session = oct2py.Oct2Py(executable=exe)
            except Exception as exc:  # oct2py raises bare errors when Octave fails to start
                raise SPMSetupError(f"Octave ({exe}) failed to start: {exc}") from exc
        self.session = session
        try:
            self._raw_eval(
                "more off; warning('off', 'all'); confirm_recursive_rmdir(false); "
                f"addpath({_q(self.tree.shim_dir)}); addpath({_q(self.tree.spm_dir)}); "
                f"addpath({_q(MFILES_DIR)}); spm('defaults', 'eeg'); "
                f"spm_get_defaults('cmdline', 1); addpath({_q(OCTAVE_COMPAT_DIR)});",
                timeout=start_timeout)
            kind = self.session.eval("exist('spm_existfile')", nout=1, timeout=start_timeout)
        except SPMError as exc:
            self.close()
            raise SPMSetupError(f"SPM from {self.tree.spm_dir} does not load in Octave: {exc}"
                                ) from exc
        if int(np.asarray(kind).ravel()[0]) != 3:
            self.close()
            raise SPMSetupError(
                f"SPM's MEX files are missing or broken in {self.tree.spm_dir} (spm_existfile is "
                "not a MEX file); rebuild with 'python -m lameg.spm setup --force'")
        self.version = str(self.call("spm", "version"))
        logger.info("Octave SPM (%s) ready in %.1f s", self.version, time.monotonic() - t0)

    def _output(self):
        """A stream handler keeping SPM's console output (for error messages and the log)."""
        lines: list[str] = []

        def handler(line):
            lines.append(str(line))
            logger.debug("octave: %s", line)

        return lines, handler

    @staticmethod
    def _error(what: str, exc: Exception, lines: list[str]) -> SPMError:
        msg = str(exc).strip()
        tail = [x for x in lines if x.strip()][-25:]
        detail = "\n".join(tail)
        return SPMError(f"{what}{msg}" + (f"\n--- SPM output (last lines) ---\n{detail}"
                                          if detail else ""))

    def _raw_eval(self, code: str, timeout=None, nout: int = 0):
        lines, handler = self._output()
        try:
            return self.session.eval(code, nout=nout, timeout=timeout, stream_handler=handler)
        except self._oct2py.Oct2PyError as exc:
            raise self._error("", exc, lines) from exc

    def call(self, function: str, *args, nargout: int = 1):
        """Call an SPM/MATLAB function.

        Parameters
        ----------
        function : str
            Function name on the engine's path.
        *args
            Arguments (numbers, strings, NumPy arrays).
        nargout : int
            Number of outputs; 0 returns None, 1 the value, more a tuple.

        Returns
        -------
        object
            None (``nargout=0``), the output (1) or a tuple of ``nargout`` outputs, as the
            engine converts them (NumPy arrays, floats, strings).

        Raises
        ------
        SPMError
            When the function fails; the message holds the engine's error and the last
            lines SPM printed.
        """
        lines, handler = self._output()
        try:
            out = self.session.feval(function, *args, nout=nargout, stream_handler=handler)
        except self._oct2py.Oct2PyError as exc:
            raise self._error(f"{function}: ", exc, lines) from exc
        return out

    @_engine_doc
    def eval(self, code: str) -> None:
        self._raw_eval(code)

    @_engine_doc
    def close(self) -> None:
        s = getattr(self, "session", None)
        if s is not None and self._own:
            try:
                s.exit()
            except Exception:  # noqa: BLE001 - shutting down a dead process
                pass
        self.session = None


class StandaloneSPM(SPMEngine):
    """The compiled SPM (``spm-python`` / ``spm_standalone``) as laMEG 0.2.1 uses it.

    Parameters
    ----------
    instance : object or None
        A running ``spm_standalone`` instance (what ``spm_standalone.initialize()`` returns);
        None starts one, which :meth:`close` terminates.

    Notes
    -----
    It needs a MATLAB Runtime; lameg's m-helpers are added to its path at start.
    """

    name = "standalone"

    def __init__(self, instance=None):
        self._own = instance is None
        if instance is None:
            try:
                import spm_standalone  # type: ignore[import-not-found]
            except ImportError as exc:
                raise SPMSetupError(
                    "spm_standalone (spm-python with a MATLAB Runtime) is not installed; use the "
                    "Octave engine (OctaveSPM) instead") from exc
            instance = spm_standalone.initialize()
        self.instance = instance
        self.eval(f"addpath({_q(MFILES_DIR)}); spm('defaults', 'eeg'); "
                  "spm_get_defaults('cmdline', 1);")

    @staticmethod
    def _conv(x):
        if isinstance(x, np.ndarray) and x.dtype.kind in "biuf":
            import matlab  # type: ignore[import-not-found]

            return matlab.double(np.atleast_2d(x).astype(float).tolist())
        if isinstance(x, (int, np.integer)) and not isinstance(x, bool):
            return float(x)
        return x

    def call(self, function: str, *args, nargout: int = 1):
        """Call an SPM/MATLAB function.

        Parameters
        ----------
        function : str
            Function name on the engine's path.
        *args
            Arguments (numbers, strings, NumPy arrays).
        nargout : int
            Number of outputs; 0 returns None, 1 the value, more a tuple.

        Returns
        -------
        object
            None (``nargout=0``), the output (1) or a tuple of ``nargout`` outputs, as the
            engine converts them (NumPy arrays, floats, strings).

        Raises
        ------
        SPMError
            When the function fails; the message holds the engine's error.
        """
        try:
            return getattr(self.instance, function)(*[self._conv(a) for a in args],
                                                    nargout=nargout)
        except Exception as exc:  # MATLAB engine errors have no common base class
            raise SPMError(f"{function}: {exc}") from exc

    @_engine_doc
    def eval(self, code: str) -> None:
        try:
            self.instance.spm_standalone("eval", code, nargout=0)
        except Exception as exc:  # noqa: BLE001
            raise SPMError(str(exc)) from exc

    @_engine_doc
    def close(self) -> None:
        if self._own and getattr(self, "instance", None) is not None:
            self.instance.terminate()
        self.instance = None
