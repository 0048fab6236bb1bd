"""An exclusive lock that keeps a second gateway process off the same buffer."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from citymesh.errors import CitymeshError


class BufferInUse(CitymeshError):
    """Another process has the reading buffer open."""


class BufferLock:
    """Holds `<buffer>.lock` with flock until released or the process ends.

    Two agents on one buffer would hand out the same sequence numbers, so the
    collector would drop one agent's batches as duplicates, and each would
    delete what the other had not sent. The kernel frees the lock when the
    holder dies, so a crash leaves no stale lock behind.
    """

    def __init__(self, buffer_path: Path) -> None:
        self.path = buffer_path.with_name(buffer_path.name + ".lock")
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(self._fd, 32, 0).decode(errors="replace").strip()
            os.close(self._fd)
            raise BufferInUse(
                f"the reading buffer {buffer_path} is in use by another gateway "
                f"process (PID {holder or 'unknown'}); stop that process, or give "
                "this gateway its own data_dir"
            ) from None
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, f"{os.getpid()}\n".encode(), 0)

    def release(self) -> None:
        """Release the lock; later calls do nothing."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
