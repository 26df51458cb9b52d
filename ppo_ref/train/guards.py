"""What keeps a run folder whole while a run writes it (runs.Run holds one of each):

    FolderLock         one writer per run folder: a second run on the same folder is refused at
                       once, and a run that dies (even by SIGKILL) leaves no stale lock behind
    DeferredInterrupt  Ctrl-C ends the run at the end of the update in progress, after a
                       checkpoint, so an interrupt loses no update and resumes exactly

Why defer Ctrl-C rather than save when the KeyboardInterrupt arrives: it can arrive anywhere in
an update, when the agent has taken some minibatch steps and the collector has advanced its envs
and Generator; a checkpoint of that state would resume into another run. At the end of an update
the state is the one a periodic checkpoint saves.
"""
from __future__ import annotations

import os
import signal
import sys
import threading
import warnings
from pathlib import Path

try:
    import fcntl
except ImportError:     # not POSIX (Windows): no advisory locks; runs are not guarded
    fcntl = None

__all__ = ["LOCK_NAME", "FolderLock", "DeferredInterrupt"]

LOCK_NAME = ".lock"


class FolderLock:
    """An exclusive advisory lock, fcntl.flock(LOCK_EX | LOCK_NB), on RUN/.lock, held while this
    object's file is open. flock locks belong to the open file, so the kernel drops the lock when
    the process ends however it ends, and two opens conflict even within one process (a thread).
    The lock file holds the owner's process id, for the message a second writer gets. On a file
    system that cannot lock, the run goes on unguarded, with a warning.
    `release` (or the process's end) unlocks; the file stays, as deleting it would let a third
    writer lock a new file while the second still holds the old one."""

    def __init__(self, folder):
        self.path = Path(folder) / LOCK_NAME
        self._file = open(self.path, "a+")
        if fcntl is None:
            return
        try:
            fcntl.flock(self._file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._file.seek(0)
            owner = self._file.read().strip() or "unknown"
            self._file.close()
            raise ValueError(f"{folder} is in use by another run (process {owner} holds "
                             f"{self.path}); one run folder takes one writer at a time") from None
        except OSError as e:    # a file system without locks (some network or FUSE mounts)
            warnings.warn(f"cannot lock {self.path} ({e}); nothing stops another run from "
                          f"writing {folder} at the same time", RuntimeWarning, stacklevel=2)
        self._file.seek(0)
        self._file.truncate()
        self._file.write(f"{os.getpid()}\n")
        self._file.flush()

    def release(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


class DeferredInterrupt:
    """While active, the first Ctrl-C (SIGINT) only sets `requested` and says so on stderr; the
    trainer checks it after each update (Run.checkpoint_if_due), saves a checkpoint and raises
    KeyboardInterrupt. A second Ctrl-C raises KeyboardInterrupt at once (the update in progress
    is lost; the last checkpoint stands). Python lets only the main thread install a handler, and
    a handler the program set itself is left alone: in either case Ctrl-C acts at once."""

    def __init__(self):
        self.requested = False
        self._previous = None
        if threading.current_thread() is threading.main_thread() and \
                signal.getsignal(signal.SIGINT) is signal.default_int_handler:
            self._previous = signal.signal(signal.SIGINT, self._on_sigint)

    def _on_sigint(self, signum, frame) -> None:
        self.restore()
        self.requested = True
        print("\nCtrl-C: finishing the update in progress to save a checkpoint "
              "(Ctrl-C again stops at once)", file=sys.stderr, flush=True)

    def restore(self) -> None:
        """Give Ctrl-C back its previous handler."""
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
            self._previous = None
