"""Stop and reload signals remembered from the first instruction of a `cnm-policy serve` process.

The sidecar spends a quarter of a second importing before `serve` can install its handlers, and
until then SIGTERM, SIGINT or SIGHUP would kill it with the default action. The package imports
this module first (standard library only); on import it installs handlers that only remember
the signal, and only in a process started as ``cnm-policy serve`` or ``python -m cnm_policy
serve``: a library user's process keeps its own signal handling. `serve` takes the remembered
signals over once its own handlers are in place.
"""

from __future__ import annotations

import os
import signal
import sys
from types import FrameType

__all__ = ["install_if_serving", "is_serve_process", "take_remembered"]

_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
_remembered: list[int] = []


def _remember(signum: int, frame: FrameType | None) -> None:
    _remembered.append(signum)


def is_serve_process(argv: list[str], orig_argv: list[str]) -> bool:
    """Whether this is ``cnm-policy serve ...`` or ``python ... -m cnm_policy serve ...``."""
    if argv and os.path.basename(argv[0]) == "cnm-policy":
        return argv[1:2] == ["serve"]
    for index, word in enumerate(orig_argv[:-2]):
        if word == "-m" and orig_argv[index + 1] == "cnm_policy":
            return orig_argv[index + 2] == "serve"
    return False


def install_if_serving() -> None:
    """Remember stop and reload signals from now on, if this process is the sidecar."""
    if not is_serve_process(sys.argv, getattr(sys, "orig_argv", [])):
        return
    for signum in _SIGNALS:
        # Only over the default action: a parent that chose to ignore a signal keeps that.
        if signal.getsignal(signum) in (signal.SIG_DFL, signal.default_int_handler):
            signal.signal(signum, _remember)


def take_remembered() -> list[int]:
    """The signals received so far by the early handlers, oldest first (each handed out once)."""
    taken = []
    while _remembered:
        taken.append(_remembered.pop(0))
    return taken


install_if_serving()  # on import: the package imports this module before anything slow
