"""Bounded work for the web app: how many translations run and wait at once, how long one may take,
and stopping one whose client has left.

A translation holds a slot from decoding its image to sending its result; at most `max_active` run
and `max_waiting` wait (the model lock runs one at a time anyway), and a request beyond that is
answered 503 with `Retry-After` at once, before its image is decoded. So the memory the app holds for
translations is bounded by `max_active` decoded images and their translation (see docs/guides/web-app.md),
whatever the number of clients. A translation that runs past `max_seconds`, or whose client
disconnects, is stopped before its next tile.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator

from fastapi import HTTPException, Request

RETRY_AFTER_S = 5
DISCONNECT_POLL_S = 0.25


class WorkSlots:
    """At most `max_active` translations at once and `max_waiting` queued; the rest get 503."""

    def __init__(self, max_active: int = 1, max_waiting: int = 4) -> None:
        if max_active < 1 or max_waiting < 0:
            raise ValueError(f"max_active must be >= 1 and max_waiting >= 0, got {max_active} and {max_waiting}")
        self.max_active, self.max_waiting = max_active, max_waiting
        self._semaphore = asyncio.Semaphore(max_active)
        self.active = self.waiting = 0

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        if self.active >= self.max_active and self.waiting >= self.max_waiting:
            raise HTTPException(503, f"the server is busy ({self.active} translations running, {self.waiting} "
                                     "waiting); try again shortly", headers={"Retry-After": str(RETRY_AFTER_S)})
        self.waiting += 1
        try:
            await self._semaphore.acquire()
        finally:
            self.waiting -= 1
        self.active += 1
        try:
            yield
        finally:
            self.active -= 1
            self._semaphore.release()


@contextlib.asynccontextmanager
async def cancelled_when_gone(request: Request, seconds: float) -> AsyncIterator[threading.Event]:
    """An event that is set when the client disconnects or `seconds` have passed (for work running in
    a thread, which checks it between steps)."""
    event = threading.Event()

    async def watch() -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while not event.is_set():
            if loop.time() >= deadline or await request.is_disconnected():
                event.set()
                return
            await asyncio.sleep(DISCONNECT_POLL_S)

    task = asyncio.create_task(watch())
    try:
        yield event
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
