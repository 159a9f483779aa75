"""Controls around the training loop: graceful stops (Ctrl-C, and the SIGTERM / SIGUSR1 that
SLURM, Kubernetes, `docker stop` and `timeout` send before killing a job) and the deterministic mode."""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
from collections.abc import Iterator
from typing import Any

import torch

logger = logging.getLogger(__name__)


# The signals that ask a run to stop: Ctrl-C, the preemption signal of schedulers and containers, and
# SLURM's advance warning (`sbatch --signal=USR1@SECONDS`).
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1)


class TrainingStopped(KeyboardInterrupt):
    """Training stopped on a signal after saving; `signum` is the signal (exit status 128 + signum)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class StopRequest:
    """A stop signal (`STOP_SIGNALS`): finish the current step, save, stop. A second Ctrl-C
    interrupts at once, without saving."""

    def __init__(self) -> None:
        self.requested = False
        self.signum: int = signal.SIGINT
        self._previous: dict[int, Any] = {}

    def _handle(self, signum: int, frame: Any) -> None:
        if self.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        if not self.requested:
            self.signum = signum
            logger.warning("%s: stopping after this step and saving (Ctrl-C again to abort without saving)",
                           signal.Signals(signum).name)
        self.requested = True

    def __enter__(self) -> StopRequest:
        if threading.current_thread() is threading.main_thread():
            for signum in STOP_SIGNALS:
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc: Any) -> None:
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)
        self._previous = {}


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
