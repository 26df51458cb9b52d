"""Running the function under check where it can neither fake a result nor hang the kit.

`ppo-ref verify MODULE:FUNCTION` imports the user's module and calls the function in a child
process (FunctionProcess); the parent, which never imports the module, computes ppo_ref's
answers and compares. Whatever the module does -- `sys.exit(0)` on import or inside the
function, `os._exit(0)`, a crash, an endless loop, patching ppo_ref's reference in its own
interpreter -- reaches the parent only as one of these outcomes, each reported as an error:

    Raised     the function raised an exception (its type and one-line message)
    Died       the process ended without answering: its exit status, or the signal that killed it
    TimedOut   the time limit passed before it answered (the process is killed)
    Unloadable the target could not be imported or is not a callable

The time limit is one budget for all the calls of one check (the cases of one quantity); importing
the module gets the same limit again, separately. Python's own start-up and ppo_ref's import
in the child are not counted.

Protocol: the child reads pickled requests on its stdin and writes pickled answers on a private
copy of its stdout; the module's own prints go to stderr, so that stdout carries only the report.
A reader thread in the parent turns the child's answers into a queue, so waiting for one has a
timeout on every platform. Arrays pass through pickle unchanged, bit for bit. What the function
returns is converted to numpy in the child (portable()), so the parent never needs torch or jax,
nor the user's classes, to read it.

A callable of the caller's own process (`check(fn, ...)` with a function object) cannot always be
re-imported in a child (a lambda, a closure, a function defined in __main__), so it runs in
process, guarded by time_limit.
"""
from __future__ import annotations

import os
import pickle
import queue
import signal
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np

__all__ = ["FunctionProcess", "InProcess", "time_limit", "Opaque", "Failure", "Raised", "Died",
           "TimedOut", "Unloadable"]

STARTUP_LIMIT = 120.0   # s for Python and ppo_ref to start in the child (not the user's time)


class Failure(Exception):
    """The function could not be called to the end; str() says what happened."""


class Raised(Failure):
    """The function raised; str() is the exception as one line, 'Type: message'."""

    def __init__(self, text: str, is_type_error: bool):
        super().__init__(text)
        self.is_type_error = is_type_error


class Died(Failure):
    """The child process ended without answering."""


class TimedOut(Failure):
    def __init__(self, seconds: float):
        super().__init__(f"timed out after {seconds:g} s")
        self.seconds = seconds


class Unloadable(Failure):
    """MODULE:FUNCTION could not be imported, or is not callable (the message says which)."""


def one_line(e: BaseException) -> str:
    """An exception as 'Type: message' on one line (torch's messages often span several)."""
    return f"{type(e).__name__}: {' '.join(str(e).split())}"


class _Alarm(BaseException):
    """Raised into an in-process call when its time is up. A BaseException, so that the
    function's own `except Exception:` does not swallow it."""


# ----- what crosses the process boundary ------------------------------------------------------

class Opaque:
    """A returned object the kit cannot read as numbers: its type, how it prints, and either
    why np.asarray failed (error) or the non-numeric dtype it gave."""

    def __init__(self, type_name: str, shown: str, error: str | None = None, dtype: str = ""):
        self.type_name, self.shown, self.error, self.dtype = type_name, shown, error, dtype

    def __repr__(self) -> str:
        return self.shown


def portable(x, to_numpy, show, one_line):
    """x as something the parent can unpickle without the child's libraries: numbers, strings,
    numeric numpy arrays, tuples and lists of them; any other object is converted with to_numpy
    (torch tensors, jax arrays), or becomes an Opaque."""
    if x is None or isinstance(x, (bool, int, float, complex, str, bytes)):
        return x
    if isinstance(x, (np.ndarray, np.generic)) and x.dtype.kind != "O":
        return x
    if isinstance(x, (tuple, list)):
        return type(x)(portable(v, to_numpy, show, one_line) for v in x) \
            if type(x) in (tuple, list) else tuple(portable(v, to_numpy, show, one_line) for v in x)
    try:
        arr = to_numpy(x)
    except Exception as e:  # noqa: BLE001 - whatever the object, describe it
        return Opaque(type(x).__name__, show(x), error=one_line(e))
    if arr.dtype.kind == "O":
        return Opaque(type(x).__name__, show(x), dtype=str(arr.dtype))
    return arr


# ----- the child -------------------------------------------------------------------------------

def serve() -> None:
    """The child's main loop: requests on stdin, answers on a private copy of stdout."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)   # Ctrl-C is the parent's; it stops this process
    threading.Thread(target=_end_with, args=(os.getppid(),), daemon=True).start()
    requests = os.fdopen(os.dup(0), "rb")
    answers = os.fdopen(os.dup(1), "wb")
    os.dup2(os.open(os.devnull, os.O_RDONLY), 0)   # the module cannot read the protocol
    os.dup2(2, 1)                                  # nor print into it: its prints go to stderr

    def send(*message):
        data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)   # whole, or not at all
        answers.write(data)
        answers.flush()

    from .verify import BadFunction, _show, _to_numpy, load_function
    send("started")
    sys_path, target = pickle.load(requests)
    sys.path[:] = sys_path
    try:
        fn = load_function(target)
    except BadFunction as e:
        send("unloadable", str(e))
        return
    send("ready")
    while True:
        try:
            args = pickle.load(requests)
        except EOFError:       # the parent has gone
            return
        if args is None:
            return
        try:
            raw = fn(*args)
        except SystemExit:
            raise      # the process exits: the parent reports it as such
        except BaseException as e:  # noqa: BLE001 - report whatever the user's code raised
            send("raised", one_line(e), isinstance(e, TypeError))
            continue
        try:
            send("returned", portable(raw, _to_numpy, _show, one_line))
        except Exception as e:  # noqa: BLE001 - e.g. an array of a dtype pickle cannot write
            send("returned", Opaque(type(raw).__name__, _show(raw), error=one_line(e)))


def _end_with(parent: int) -> None:
    """End this process once its parent has gone (killed, say, while a function ran forever);
    a daemon thread of the child, checking once a second."""
    while os.getppid() == parent:
        time.sleep(1.0)
    os._exit(3)


# ----- the parent ------------------------------------------------------------------------------

def describe_exit(returncode: int) -> str:
    """'exited with status 0', or 'was killed by signal 9 (SIGKILL)'."""
    if returncode >= 0:
        return f"exited with status {returncode}"
    try:
        name = f" ({signal.Signals(-returncode).name})"
    except ValueError:
        name = ""
    return f"was killed by signal {-returncode}{name}"


class FunctionProcess:
    """MODULE:FUNCTION loaded in a child process; calling this object calls it there.

        with FunctionProcess("mypkg.ppo:compute_gae", timeout=60) as fn:
            raw = fn(args)       # args: a list; raises Raised, Died or TimedOut

    timeout: seconds for all the calls together (None: no limit); importing the module has the
    same limit of its own. Entering raises Unloadable, Died or TimedOut when the function cannot
    be loaded. Leaving stops the child (killing it if it does not end at once).
    """

    def __init__(self, target: str, timeout: float | None = 60.0):
        self.target, self.timeout, self.spent = target, timeout, 0.0
        self._answers: queue.Queue = queue.Queue()
        self._process = None

    def __enter__(self):
        root = str(Path(__file__).resolve().parents[2])   # where ppo_ref itself is imported from
        code = (f"import sys; sys.path.insert(0, {root!r}); "
                "from ppo_ref.spec.sandbox import serve; serve()")
        self._process = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE)
        threading.Thread(target=self._read, daemon=True).start()
        try:
            self._wait(STARTUP_LIMIT, STARTUP_LIMIT, "started")
            self._send((list(sys.path), self.target))
            answer = self._wait(self.timeout, self.timeout, "ready", "unloadable")
        except BaseException:
            self._stop()
            raise
        if answer[0] == "unloadable":
            self._stop()
            raise Unloadable(answer[1])
        return self

    def __exit__(self, *exc) -> None:
        self._stop()

    def __call__(self, args: list):
        left = None if self.timeout is None else self.timeout - self.spent
        start = time.monotonic()
        self._send(args)
        try:
            answer = self._wait(left, self.timeout, "returned", "raised")
        finally:
            self.spent += time.monotonic() - start
        if answer[0] == "raised":
            raise Raised(*answer[1:])
        return answer[1]

    def _read(self) -> None:
        """Reader thread: every answer of the child into the queue, then None at its end."""
        stream = self._process.stdout
        try:
            while True:
                self._answers.put(pickle.load(stream))
        except Exception:  # noqa: BLE001 - EOF, or a stream cut mid-answer: the child has ended
            self._answers.put(None)
        finally:
            stream.close()

    def _send(self, message) -> None:
        try:
            pickle.dump(message, self._process.stdin, protocol=pickle.HIGHEST_PROTOCOL)
            self._process.stdin.flush()
        except OSError:    # the child has ended: its exit status says how (raised by _wait)
            self._wait(STARTUP_LIMIT, STARTUP_LIMIT)

    def _wait(self, seconds, limit, *expected):
        """The child's next answer (one of the expected kinds); TimedOut(limit) after `seconds`
        (the child is killed), Died when it ends first."""
        try:
            answer = self._answers.get(timeout=None if seconds is None else max(seconds, 0.0))
        except queue.Empty:
            self._stop(kill=True)
            raise TimedOut(limit) from None
        if answer is None or answer[0] not in expected:
            try:
                returncode = self._process.wait(timeout=STARTUP_LIMIT)
            except subprocess.TimeoutExpired:   # it closed its answers but runs on
                self._stop()
                returncode = self._process.returncode
            raise Died(describe_exit(returncode))
        return answer

    def _stop(self, kill: bool = False) -> None:
        """Ask the child to end, and kill it if it has not within a second (at once: kill)."""
        p = self._process
        if p is None:
            return
        if kill and p.poll() is None:
            p.kill()
        try:
            if p.poll() is None:
                pickle.dump(None, p.stdin)
            p.stdin.close()
        except OSError:
            pass
        try:
            p.wait(timeout=1.0)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


# ----- in process ------------------------------------------------------------------------------

@contextmanager
def time_limit(seconds: float | None, reported: float | None = None):
    """Raise TimedOut(reported, else seconds) in the with-block once `seconds` have passed.

    A real SIGALRM (signal.setitimer) interrupts Python code and blocking calls such as
    time.sleep; a loop inside one C call ends first. It can only be used in the main thread of a
    Unix process: elsewhere, and with seconds=None, the block runs without a limit. A timer the
    caller had set (pytest-timeout uses SIGALRM too) is put back with the time it had left.
    """
    usable = seconds is not None and hasattr(signal, "setitimer") and \
        threading.current_thread() is threading.main_thread()
    if not usable:
        yield
        return
    done = False

    def alarm(signum, frame):
        if not done:       # the block has ended: too late to interrupt it
            raise _Alarm

    start = time.monotonic()
    previous = signal.signal(signal.SIGALRM, alarm)
    left_before, interval_before = signal.setitimer(signal.ITIMER_REAL, max(seconds, 1e-6))
    try:
        yield
    except _Alarm:
        raise TimedOut(seconds if reported is None else reported) from None
    finally:
        done = True
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        if left_before > 0:
            elapsed = time.monotonic() - start
            signal.setitimer(signal.ITIMER_REAL, max(left_before - elapsed, 1e-6), interval_before)


class InProcess:
    """A callable of this process behind the same interface as FunctionProcess:

        with InProcess(fn, timeout=60) as call:
            raw = call(args)     # raises Raised or TimedOut

    The time limit (one budget for all calls) is time_limit's: the main thread of a Unix process.
    A SystemExit from the function is reported as raised, not obeyed: the caller's process goes on.
    """

    def __init__(self, fn, timeout: float | None = 60.0):
        self.fn, self.timeout, self.spent = fn, timeout, 0.0

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        pass

    def __call__(self, args: list):
        left = None if self.timeout is None else self.timeout - self.spent
        start = time.monotonic()
        try:
            with time_limit(left, self.timeout):
                return self.fn(*args)
        except (Exception, SystemExit) as e:  # noqa: BLE001 - report whatever the user's code raised
            if isinstance(e, TimedOut):
                raise
            raise Raised(one_line(e), isinstance(e, TypeError)) from None
        finally:
            self.spent += time.monotonic() - start
