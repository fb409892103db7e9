"""A training stopped by SIGTERM or Ctrl-C says so and exits non-zero (128 + the signal).

Lightning, while it fits, validates or tests, turns SIGTERM into a flag and stops at the end
of the current batch with :class:`SIGTERMException`, a ``SystemExit`` whose status is 0; on
Ctrl-C it tears down and exits with status 1 after a log line. Outside those loops (data
loading, building, writing the outputs) SIGTERM would kill the process without a word.
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType

from lightning.pytorch.utilities.exceptions import SIGTERMException
from rich.console import Console


def _exit_interrupted(signum: int, what: str) -> None:
    name = signal.Signals(signum).name
    Console(stderr=True).print(f"interrupted: {name} received; {what}", highlight=False,
                               soft_wrap=True)
    sys.exit(128 + signum)


@contextmanager
def interruptible(what: str) -> Iterator[None]:
    """Run the body; if SIGTERM or SIGINT stops it, print ``interrupted: <signal> received;
    <what>`` on stderr and exit with 128 + the signal number (143, 130).

    While Lightning runs, its own SIGTERM handler (which calls this one after its own) stops
    the loop at the end of a batch; elsewhere this handler stops the program at once.
    """
    received: list[int] = []

    def on_sigterm(signum: int, frame: FrameType | None) -> None:
        received.append(signum)
        if signal.getsignal(signal.SIGTERM) is on_sigterm:  # Lightning is not running
            raise SIGTERMException

    def on_sigint(signum: int, frame: FrameType | None) -> None:
        received.append(signum)
        raise KeyboardInterrupt

    previous: dict[int, Callable | int | None] = {
        signal.SIGTERM: signal.signal(signal.SIGTERM, on_sigterm),
        signal.SIGINT: signal.signal(signal.SIGINT, on_sigint),
    }
    try:
        yield
    except SIGTERMException:
        _exit_interrupted(received[-1] if received else signal.SIGTERM, what)
    except KeyboardInterrupt:
        _exit_interrupted(signal.SIGINT, what)
    except SystemExit:  # Lightning's own exit after a Ctrl-C
        if received:
            _exit_interrupted(received[-1], what)
        raise
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
