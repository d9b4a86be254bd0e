"""Example data: the bundled test participant (in the spirit of ``mne.datasets``).

The repository ships a small, real-geometry test participant ``sub-01`` in ``test_data/``: a
FreeSurfer subject (``fs/sub-01``), a laMEG fiducial table (``participants.tsv``) and simulated
CTF and Neuromag recordings in SPM format with their ground truth (``sub-01/meg/ses-01/spm``);
``test_data/README.md`` describes every file. The tutorials and the demo use it through this
module::

    from lameg.datasets import copy_test_participant

    participant = copy_test_participant()          # private, writable copy
    surf_set = LayerSurfaceSet(participant.subj_id, 11,
                               subjects_dir=participant.subjects_dir)
    data_file = participant.dataset("sim_ctf_pial")   # .../sim_ctf_pial.mat
    coregister(participant.fid_coords, data_file, surf_set)
    ...
    participant.cleanup()

Analyses write next to their inputs (``LayerSurfaceSet.create`` into ``<subject>/surf/laminar``,
co-registration and inversions into the MEG dataset and beside it), so they run on a copy and the
bundled files stay untouched.

Where the data are found: the folder named by the ``LAMEG_TEST_DATA`` environment variable, else
the ``test_data/`` folder of the repository the package runs from (a source checkout or an
editable install, ``pip install -e .``). A regular (wheel) install does not contain the data; get
them by cloning the repository, or regenerate them anywhere with
``python tools/make_test_data.py --out DIR`` (from the repository, about 20 s, no download) and set
``LAMEG_TEST_DATA=DIR``.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .exceptions import LamegFileNotFoundError, LamegValueError

__all__ = ["TestParticipant", "copy_test_participant", "test_participant_path"]

#: Environment variable naming the test-data folder (overrides the repository's ``test_data/``).
TEST_DATA_ENV = "LAMEG_TEST_DATA"
#: Identifier of the bundled participant.
SUBJECT = "sub-01"
#: MEG folder of the participant, relative to the data root.
MEG_SUBDIR = Path(SUBJECT) / "meg" / "ses-01" / "spm"

_REPO_TEST_DATA = Path(__file__).resolve().parents[1] / "test_data"
_HOW_TO_GET = (
    "The test participant ships with the lameg source repository (test_data/), not with the "
    "wheel: clone the repository and install it with 'pip install -e .', or run "
    "'python tools/make_test_data.py --out DIR' from the repository and set "
    f"{TEST_DATA_ENV}=DIR."
)


def _check_root(root: Path, origin: str) -> Path:
    missing = [p for p in ("participants.tsv", f"fs/{SUBJECT}/surf", str(MEG_SUBDIR))
               if not (root / p).exists()]
    if missing:
        raise LamegFileNotFoundError(
            f"{root} ({origin}) is not a lameg test-data folder: {', '.join(missing)} missing. "
            + _HOW_TO_GET
        )
    return root


def test_participant_path(path: str | os.PathLike | None = None) -> Path:
    """Folder of the bundled test participant (read-only: use a copy to run analyses).

    Parameters
    ----------
    path : str or path-like, optional
        Folder to use. Default: ``$LAMEG_TEST_DATA`` if set, else the repository's
        ``test_data/`` (source checkouts and editable installs).

    Returns
    -------
    pathlib.Path
        Absolute path of the data root, holding ``participants.tsv``, ``fs/sub-01`` and
        ``sub-01/meg/ses-01/spm``.

    Raises
    ------
    LamegFileNotFoundError
        If the folder does not exist or lacks the participant's files; the message says how to
        get them.
    """
    if path is not None:
        root, origin = Path(path), "given path"
    elif os.environ.get(TEST_DATA_ENV):
        root, origin = Path(os.environ[TEST_DATA_ENV]), f"${TEST_DATA_ENV}"
    else:
        root, origin = _REPO_TEST_DATA, "the repository's test_data/"
    root = root.expanduser().resolve()
    if not root.is_dir():
        raise LamegFileNotFoundError(f"Test data not found at {root} ({origin}). " + _HOW_TO_GET)
    return _check_root(root, origin)


test_participant_path.__test__ = False  # a data helper, not a test (pytest collection)


@dataclass(frozen=True)
class TestParticipant:
    """A writable copy of the test participant.

    Parameters
    ----------
    root : pathlib.Path
        Root of the copy (the layout of ``test_data/``).
    subj_id : str
        Participant identifier, ``'sub-01'``.
    copied : bool
        True for copies made by :func:`copy_test_participant`; only those are deleted by
        :meth:`cleanup`.
    """

    __test__ = False  # not a pytest test class

    root: Path
    subj_id: str = SUBJECT
    copied: bool = field(default=False, repr=False)

    @property
    def subjects_dir(self) -> Path:
        """FreeSurfer ``SUBJECTS_DIR`` holding the participant (``<root>/fs``)."""
        return self.root / "fs"

    @property
    def participants_tsv(self) -> Path:
        """laMEG fiducial table (``subj_id``, ``nas``, ``lpa``, ``rpa``; scanner RAS mm)."""
        return self.root / "participants.tsv"

    @property
    def meg_dir(self) -> Path:
        """Folder of the SPM MEG datasets (``<root>/sub-01/meg/ses-01/spm``)."""
        return self.root / MEG_SUBDIR

    @property
    def fid_coords(self) -> dict[str, list[float]]:
        """MRI fiducials ``{'nas', 'lpa', 'rpa'}`` (scanner RAS, mm) from ``participants.tsv``."""
        from .util import get_fiducial_coords

        return get_fiducial_coords(self.subj_id, self.participants_tsv)

    def dataset_names(self) -> list[str]:
        """Names of the SPM datasets in the copy.

        Returns
        -------
        list of str
            Stems of the ``.mat`` headers that have a ``.dat`` beside them (e.g.
            ``'sim_ctf_pial'``), sorted.
        """
        return sorted(p.stem for p in self.meg_dir.glob("*.mat")
                      if p.with_suffix(".dat").is_file())

    def dataset(self, name: str) -> Path:
        """Header file (``.mat``) of an SPM dataset of the copy.

        Parameters
        ----------
        name : str
            Dataset name, with or without ``.mat``: ``'sim_ctf_pial'``, ``'sim_ctf_white'``,
            ``'sim_ctf_noise'`` or ``'sim_neuromag_pial'`` (see ``test_data/README.md``).

        Returns
        -------
        pathlib.Path
            ``<meg_dir>/<name>.mat`` (its data are in the ``.dat`` beside it).
        """
        stem = name[:-4] if str(name).endswith(".mat") else str(name)
        path = self.meg_dir / f"{stem}.mat"
        if not path.is_file() or not path.with_suffix(".dat").is_file():
            raise LamegFileNotFoundError(
                f"No dataset {stem!r} in {self.meg_dir}; available: {self.dataset_names()} "
                "(copy_test_participant(datasets=...) copies only the datasets it is given)"
            )
        return path

    def ground_truth(self) -> dict[str, np.ndarray]:
        """Ground truth of the simulated datasets (``ground_truth.npz``) as a dict of arrays.

        Returns
        -------
        dict of str to ndarray
            Among others ``time_s`` (the epoch's time axis, s, shape (151,)); the keys are
            described in ``test_data/README.md``.
        """
        with np.load(self.meg_dir / "ground_truth.npz") as gt:
            return {k: gt[k] for k in gt.files}

    def cleanup(self) -> None:
        """Delete the copy (the whole ``root`` folder).

        Raises
        ------
        LamegValueError
            If this object does not describe a copy made by :func:`copy_test_participant`
            (the bundled data are never deleted).
        """
        if not self.copied or (self.root / "SHA256SUMS").exists():
            raise LamegValueError(f"{self.root} is not a copy made by copy_test_participant(); "
                                  "refusing to delete it")
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> TestParticipant:
        return self

    def __exit__(self, *exc) -> None:
        self.cleanup()


def copy_test_participant(
    dest: str | os.PathLike | None = None,
    *,
    datasets: Sequence[str] | None = None,
    source: str | os.PathLike | None = None,
) -> TestParticipant:
    """Copy the test participant to a writable folder.

    Parameters
    ----------
    dest : str or path-like, optional
        Folder for the copy; it must not exist or be empty. Default: a new temporary folder
        (``lameg_test_participant_*`` in the system's temporary directory), which
        :meth:`TestParticipant.cleanup` deletes.
    datasets : sequence of str, optional
        SPM datasets to copy (names as in :meth:`TestParticipant.dataset`); default all. The
        FreeSurfer subject, ``participants.tsv`` and the ground truth are always copied; the
        MNE-format files (``sub-01/meg/ses-01/fif``) are not (read them from
        :func:`test_participant_path`).
    source : str or path-like, optional
        Data root to copy, default :func:`test_participant_path`.

    Returns
    -------
    TestParticipant
        Paths and fiducials of the copy.

    Raises
    ------
    LamegFileNotFoundError
        If the test data or a requested dataset cannot be found.
    LamegValueError
        If ``dest`` is a file or a non-empty folder.
    """
    src = test_participant_path(source)
    src_meg = src / MEG_SUBDIR
    if datasets is None:
        names = sorted(p.stem for p in src_meg.glob("*.mat"))
    else:
        names = [str(n)[:-4] if str(n).endswith(".mat") else str(n)
                 for n in ([datasets] if isinstance(datasets, str) else datasets)]
    missing = [n for n in names
               if not (src_meg / f"{n}.mat").is_file() or not (src_meg / f"{n}.dat").is_file()]
    if missing:
        available = sorted(p.stem for p in src_meg.glob("*.mat"))
        raise LamegFileNotFoundError(f"Datasets {missing} not in {src_meg}; available: "
                                     f"{available}")

    if dest is None:
        root = Path(tempfile.mkdtemp(prefix="lameg_test_participant_"))
    else:
        root = Path(dest).expanduser().resolve()
        if root.exists() and (not root.is_dir() or any(root.iterdir())):
            raise LamegValueError(f"dest {root} must be a new or empty folder")
        root.mkdir(parents=True, exist_ok=True)

    shutil.copy2(src / "participants.tsv", root / "participants.tsv")
    shutil.copytree(src / "fs" / SUBJECT, root / "fs" / SUBJECT)
    meg = root / MEG_SUBDIR
    meg.mkdir(parents=True)
    for extra in ("ground_truth.npz", "ground_truth.json"):
        if (src_meg / extra).is_file():
            shutil.copy2(src_meg / extra, meg / extra)
    for name in names:
        for ext in (".mat", ".dat"):
            shutil.copy2(src_meg / f"{name}{ext}", meg / f"{name}{ext}")
    for path in [root / "fs", *(root / "fs").rglob("*"), meg, *meg.iterdir()]:
        # copies of read-only files (a read-only checkout) must be writable
        path.chmod(path.stat().st_mode | 0o200)
    return TestParticipant(root=root, copied=True)

