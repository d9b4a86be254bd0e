"""Writing a file through a memory map of it (a growing map behind ``write``/``seek``/``tell``).

Copying into a file's mapped pages costs a third of the time of ``write`` calls for the hundreds
of megabytes of a full-resolution header (measured on a 2-core virtual machine); the MAT-5
writer (:mod:`lameg.io.matfile`) hands SciPy this file object.
"""

from __future__ import annotations

import io
import mmap
import os

__all__ = ["MappedWriter"]


class MappedWriter(io.RawIOBase):
    """A file written through a memory map that grows as needed (raw, seekable, writable).

    Copying into a file's mapped pages costs a third of ``write`` calls on the large matrices
    of a full-resolution header (measured); the file is cut to the bytes written on ``close``.
    Small writes are best gathered by an ``io.BufferedWriter`` around it.

    Parameters
    ----------
    fh : file object
        An open, empty file (read-write, binary) to write.
    size_hint : int
        Expected size, bytes: reserved (allocated) up front; the map doubles when exceeded.
    """

    # matrices at least this large are dropped from the process's memory once written (the
    # file's pages stay in the page cache), so that the map does not add to the resident size
    _RELEASE_BYTES = 2**24

    def __init__(self, fh, size_hint: int) -> None:
        super().__init__()
        self._fh = fh
        self._size = max(int(size_hint), 2**16)
        self._reserve(0, self._size)
        self._map = mmap.mmap(fh.fileno(), self._size)
        self._end = 0

    def write(self, data) -> int:
        """Write ``data`` at the current position.

        Parameters
        ----------
        data : bytes-like
            The bytes (any object with the buffer protocol).

        Returns
        -------
        int
            Number of bytes written (all of them).
        """
        data = memoryview(data).cast("B")
        pos = self._map.tell()
        if pos + len(data) > self._size:
            self._grow(max(2 * self._size, pos + len(data)))
        self._map.write(data)
        self._end = max(self._end, pos + len(data))
        if len(data) >= self._RELEASE_BYTES:  # a large matrix: its pages leave this process
            page = mmap.PAGESIZE
            lo, hi = -(-pos // page) * page, (pos + len(data)) // page * page
            if hi > lo:  # the file keeps the data; only the mapping's pages are released
                self._map.madvise(mmap.MADV_DONTNEED, lo, hi - lo)
        return len(data)

    def _grow(self, size: int) -> None:
        pos, old = self._map.tell(), self._size
        self._reserve(old, size - old)
        try:
            self._map.resize(size)
        except (SystemError, OSError, ValueError):  # no mremap (macOS): map the file again
            self._map.close()
            self._map = mmap.mmap(self._fh.fileno(), size)
            self._map.seek(pos)
        self._size = size

    def _reserve(self, offset: int, length: int) -> None:
        # blocks allocated up front (the file grows to offset + length): ext4 then has no
        # delayed allocation to force out, synchronously, when the file is renamed over an
        # existing one (auto_da_alloc) -- a flush of the whole file at every header update
        try:
            os.posix_fallocate(self._fh.fileno(), offset, length)
        except (AttributeError, OSError):  # not supported here: a sparse extension
            self._fh.truncate(offset + length)

    def seek(self, pos: int, whence: int = 0) -> int:
        """Move the position (as ``io.IOBase.seek``).

        Parameters
        ----------
        pos : int
            Offset, bytes.
        whence : {0, 1, 2}
            From the start, the current position or the end of the bytes written.

        Returns
        -------
        int
            The new position.
        """
        base = (0, self._map.tell(), self._end)[whence]
        self._map.seek(base + pos)
        return self._map.tell()

    def tell(self) -> int:
        """The current position.

        Returns
        -------
        int
            Bytes from the start of the file.
        """
        return self._map.tell()

    def writable(self) -> bool:
        """Whether the stream can be written.

        Returns
        -------
        bool
            True.
        """
        return True

    def seekable(self) -> bool:
        """Whether the stream supports random access.

        Returns
        -------
        bool
            True.
        """
        return True

    def close(self) -> None:
        """Release the map and cut the file to the bytes written."""
        if not self.closed:
            self._map.close()
            self._fh.truncate(self._end)
        super().close()
