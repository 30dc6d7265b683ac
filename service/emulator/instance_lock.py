"""One emulator per state file: a lock file beside the state names the process that serves it.

Two emulators on one ``emulator.json`` would each load the account, trade it on their own and
overwrite each other's file (``regime-trader status`` started while ``regime-trader run`` runs
did exactly that). The process that serves a state file holds an exclusive ``flock`` on
``<state>.lock`` for as long as it lives -- the kernel releases it when the process ends, SIGKILL
included, so a crash never leaves a stale lock -- and writes into it where it listens:

.. code-block:: json

    {"pid": 1234, "url": "http://127.0.0.1:40123", "key_id": "embedded-...", "secret_key": "..."}

Another process that finds the lock taken attaches to that emulator with those keys instead of
starting its own; if the holder does not answer (it is starting, or hung), it waits a little,
then refuses with :class:`EmulatorInUseError` naming the pid and the file. A process that must
serve the emulator itself (``run``: a one-shot command's emulator ends with that command) waits
for the lock instead (:meth:`StateFileLock.acquire` with ``wait_secs``). The file is
``0600`` (it holds the embedded emulator's key pair, which is made up per start and accepted by
that loopback emulator only), and it is never removed: removing a locked file would let a third
process lock a new file of the same name while the second still holds the old one.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

__all__ = ["EmulatorInUseError", "EmulatorInstance", "StateFileLock"]


class EmulatorInUseError(RuntimeError):
    """Another process holds the state file's lock but its emulator cannot be reached."""


@dataclass(frozen=True)
class EmulatorInstance:
    """Where the emulator serving a state file listens, and the key pair it accepts."""

    pid: int
    url: str
    key_id: str
    secret_key: str

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> EmulatorInstance | None:
        """The instance written by :meth:`to_json`; None for an empty or partial file."""
        try:
            data = json.loads(text)
            return cls(
                pid=int(data["pid"]),
                url=str(data["url"]),
                key_id=str(data["key_id"]),
                secret_key=str(data["secret_key"]),
            )
        except (ValueError, KeyError, TypeError):
            return None


class StateFileLock:
    """The lock of one emulator state file (``<state>.lock``).

    Parameters
    ----------
    state_file : Path
        The emulator's state file; the lock file sits beside it.
    """

    def __init__(self, state_file: Path) -> None:
        self.path = state_file.with_name(state_file.name + ".lock")
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self, wait_secs: float = 0.0) -> bool:
        """Take the lock if no other process holds it, waiting up to ``wait_secs`` for it.

        Returns
        -------
        bool
            True if this process now holds the lock.
        """
        deadline = time.monotonic() + wait_secs
        while not self._try_acquire():
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.2)
        return True

    def _try_acquire(self) -> bool:
        if self._fd is not None:
            return True
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        return True

    def publish(self, instance: EmulatorInstance) -> None:
        """Write where this process's emulator listens (the lock must be held)."""
        if self._fd is None:
            raise RuntimeError(f"{self.path}: publish needs the lock")
        data = instance.to_json().encode("utf-8")
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, data, 0)
        os.fsync(self._fd)

    def read(self) -> EmulatorInstance | None:
        """The instance the holder published; None before it has written one."""
        try:
            return EmulatorInstance.from_json(self.path.read_text(encoding="utf-8"))
        except OSError:
            return None

    def release(self) -> None:
        """Empty the file and let the lock go (the file stays: see the module docstring)."""
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
        os.close(fd)  # closing the descriptor releases the flock

    def wait_for_holder(
        self, answers: Callable[[EmulatorInstance], bool], timeout_secs: float
    ) -> EmulatorInstance:
        """The holder's instance once it answers; or :class:`EmulatorInUseError`.

        Parameters
        ----------
        answers : callable(instance) -> bool
            Whether the published emulator answers now (e.g. its ``/admin/health``).
        timeout_secs : float
            How long a holder that is still starting is given.

        Raises
        ------
        EmulatorInUseError
            The holder published nothing that answers within ``timeout_secs``.
        """
        deadline = time.monotonic() + timeout_secs
        instance = None
        while True:
            instance = self.read()
            if instance is not None and answers(instance):
                return instance
            if time.monotonic() >= deadline:
                break
            time.sleep(0.2)
        who = f"process {instance.pid} ({instance.url})" if instance else "another process"
        raise EmulatorInUseError(
            f"the emulator state {self.path.with_suffix('')} is in use by {who}, which does not "
            f"answer: stop that process, or give this one another RT_DATA_DIR"
        )
