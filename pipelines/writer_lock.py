"""One writer at a time on the DuckDB file, whatever the Dagster instance (docs/operations.md).

A DuckDB file has one writer, and a writing process locks every other process out, readers
included. The project's instance also puts every step that opens the file in the pool
``duckdb`` (one slot), which schedules steps of concurrent runs nicely; but an instance without
that pool (any ``DAGSTER_HOME`` without the project's ``dagster.yaml``) would let two runs'
steps collide on the file. So every step holds an exclusive ``flock`` on ``<database>.lock``
while it has the file open, and writes who it is into the lock file for whoever waits.
"""

import fcntl
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

LOCK_SUFFIX = ".lock"


@dataclass
class _HeldLock:
    """This process's hold on one lock file: threads take turns, nested holds are free."""

    turn: threading.RLock = field(default_factory=threading.RLock)
    depth: int = 0
    descriptor: int | None = None


_HELD: dict[str, _HeldLock] = {}
_HELD_GUARD = threading.Lock()


def lock_path(database: str) -> Path | None:
    """The lock file beside the database file; None for databases that are no local file."""
    if database == ":memory:" or database.startswith("md:"):
        return None
    return Path(f"{database}{LOCK_SUFFIX}")


def current_holder(path: Path) -> str:
    """Who holds the lock, as its holder wrote it (empty when nobody wrote one)."""
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        return ""


@contextmanager
def exclusive_writer(database: str, holder: str, log: Callable[[str], None]) -> Iterator[None]:
    """Hold the database's writer lock; a wait is logged once, naming who holds it.

    Reentrant within a thread (a step that opens the file twice waits for nobody), exclusive
    across threads and processes.
    """
    path = lock_path(database)
    if path is None:
        yield
        return
    with _HELD_GUARD:
        held = _HELD.setdefault(str(path), _HeldLock())
    if not held.turn.acquire(blocking=False):
        log(f"waiting for the DuckDB file {database}: held by {current_holder(path) or 'a thread'}")
        held.turn.acquire()
    try:
        if held.depth == 0:
            held.descriptor = _lock_file(path, database, holder, log)
        held.depth += 1
        try:
            yield
        finally:
            held.depth -= 1
            if held.depth == 0 and held.descriptor is not None:
                os.ftruncate(held.descriptor, 0)
                os.close(held.descriptor)  # closing the descriptor releases the flock
                held.descriptor = None
    finally:
        held.turn.release()


def _lock_file(path: Path, database: str, holder: str, log: Callable[[str], None]) -> int:
    """Take the file's exclusive flock (waiting if another process has it) and sign it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            held_by = current_holder(path) or "another process"
            log(f"waiting for the DuckDB file {database}: held by {held_by}")
            fcntl.flock(descriptor, fcntl.LOCK_EX)
        os.ftruncate(descriptor, 0)
        os.pwrite(descriptor, holder.encode(), 0)
    except BaseException:
        os.close(descriptor)
        raise
    return descriptor
