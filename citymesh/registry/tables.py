"""Base of the registry's parts: locked write transactions and plain reads."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from citymesh.errors import RegistryError, StorageError

T = TypeVar("T")


class RegistryTables:
    """Runs work on the registry database: writes one at a time, reads freely."""

    def __init__(self, sessions: sessionmaker[Session], lock: threading.Lock) -> None:
        self._sessions = sessions
        self._lock = lock

    def _write(self, work: Callable[[Session], T]) -> T:
        """Run `work` in one write transaction, under the registry's lock."""
        with self._lock, self._sessions.begin() as session:
            try:
                return work(session)
            except IntegrityError as exc:
                raise RegistryError(
                    f"registry constraint violated: {exc.orig}"
                ) from exc
            except SQLAlchemyError as exc:
                raise StorageError(f"registry write failed: {exc}") from exc

    def _read(self, work: Callable[[Session], T]) -> T:
        """Run `work` in a session of its own, without the lock."""
        with self._sessions() as session:
            return work(session)
