"""Controls around the training loop: a graceful Ctrl-C and the deterministic mode."""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
from collections.abc import Iterator
from typing import Any

import torch

logger = logging.getLogger(__name__)


class StopRequest:
    """First Ctrl-C: finish the current step, save, stop. A second one interrupts at once."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: Any = None

    def _handle(self, signum: int, frame: Any) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        logger.warning("stopping after this step (Ctrl-C again to abort without saving)")

    def __enter__(self) -> StopRequest:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


@contextlib.contextmanager
def deterministic_mode(enabled: bool) -> Iterator[None]:
    """Reproducible kernels while training, restored afterwards.

    On the CPU, `torch.use_deterministic_algorithms` is not enough: when the cores are busy with other
    work, multi-threaded kernels round differently from run to run. Seen here: MKL's matrix
    products (also with its dynamic threading off; only MKL_CBWR=COMPATIBLE, an environment variable
    read once at start-up, fixed them) and oneDNN's convolutions (also with oneDNN's own
    deterministic flag). Adam amplifies any such difference into a visible drift within a few steps.
    So the mode runs PyTorch on one CPU thread; oneDNN stays on, since on one thread it is both
    reproducible and the fastest CPU path.
    """
    if not enabled:
        yield
        return
    previous = torch.are_deterministic_algorithms_enabled(), torch.get_num_threads()
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(previous[0])
        torch.set_num_threads(previous[1])
