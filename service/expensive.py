"""The expensive requests' own executor: refits, sensitivity, uncached counterfactuals and
decompositions run in a forked child process each, never on the event loop or in the thread pool
that answers the cheap routes (nor under their GIL).

At most ``slots`` children run and ``queue`` requests wait for one; a request beyond that is
refused at once with 429 and ``Retry-After``. A child is killed when its client goes away or when
it runs past the time limit. The child is a fork of the worker, so it has the served bundle
(copy-on-write) and needs nothing loaded; it sends back the answer's bytes, or the exception it
raised, through a pipe.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import math
import multiprocessing
import os
import pickle
import signal
import time
from collections.abc import Callable, Hashable
from typing import TypeVar

from fastapi import Request

from service.errors import Busy, ClientGone, Overrun
from service.served import BoundedCache

log = logging.getLogger("service")
T = TypeVar("T")
#: How often a running request looks whether its client is still there.
POLL_S = 0.1
#: Durations of recent runs kept for the ``Retry-After`` estimate.
RECENT = 20
#: The children's priority below the worker's.
NICENESS = 10


def _child(compute: Callable[[], object], fd: int) -> None:
    # The worker's handlers only wake its event loop, which does not run here: a signal to the
    # server's process group must end the child too.
    signal.set_wakeup_fd(-1)
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, signal.SIG_DFL)
    # Where cores are few, the cheap routes' workers go first.
    os.nice(NICENESS)
    try:
        outcome: tuple[bool, object] = (True, compute())
    except BaseException as exc:  # noqa: BLE001 - every outcome goes back to the parent
        outcome = (False, exc)
    try:
        data = pickle.dumps(outcome)
    except Exception as exc:  # noqa: BLE001 - an exception that does not pickle
        data = pickle.dumps((False, RuntimeError(f"{outcome[1]!r} ({exc})")))
    with os.fdopen(fd, "wb") as pipe:
        pipe.write(data)
    # No atexit handlers or finalizers of the parent's objects in the child.
    os._exit(0)


class ExpensiveWork:
    """A bounded executor of forked children.

    Args:
        slots: children running at once.
        queue: requests that may wait for a slot; more are refused (429).
        timeout: seconds a child may run before it is killed (503).
    """

    def __init__(self, slots: int, queue: int, timeout: float):
        self.slots = slots
        self.queue = queue
        self.timeout = timeout
        self.admitted = 0
        self.running = 0
        self._slots = asyncio.Semaphore(slots)
        self._recent: collections.deque[float] = collections.deque(maxlen=RECENT)
        self._pending: dict[tuple[int, Hashable], asyncio.Future[bytes]] = {}
        self._context = multiprocessing.get_context("fork")

    def retry_after(self) -> int:
        """Seconds until a slot is likely free: the recent mean run time, per waiting request."""
        mean = sum(self._recent) / len(self._recent) if self._recent else 5.0
        return max(1, math.ceil(mean * (1 + self.admitted - self.slots) / self.slots))

    async def respond(
        self,
        request: Request,
        cache: BoundedCache,
        key: Hashable,
        compute: Callable[[], bytes],
    ) -> bytes:
        """The cached answer of ``key``, or ``compute`` run in a child and kept; the same request
        arriving while it runs waits for that answer instead of a second child."""
        while True:
            body = cache.get(key)
            if body is not None:
                return body
            pending = self._pending.get((id(cache), key))
            if pending is None:
                break
            try:
                return await asyncio.shield(pending)
            except ClientGone:
                continue  # the first asker went away: this one asks itself
        future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._pending[(id(cache), key)] = future
        try:
            body = cache.put(key, await self.run(request, compute))
            future.set_result(body)
            return body
        except BaseException as exc:
            # Those waiting get the error; a cancelled run sends them to ask again.
            future.set_exception(exc if isinstance(exc, Exception) else ClientGone())
            future.exception()  # retrieved: nobody may be waiting
            raise
        finally:
            del self._pending[(id(cache), key)]

    async def run(self, request: Request, compute: Callable[[], T]) -> T:
        """``compute()`` in a child process; its exception is raised here."""
        if self.admitted >= self.slots + self.queue:
            raise Busy(
                f"too many expensive requests (refits, sensitivity, uncached counterfactuals): "
                f"{self.running} running and {self.admitted - self.running} waiting, the most "
                f"this server takes; retry after the time in Retry-After",
                self.retry_after(),
            )
        self.admitted += 1
        try:
            async with self._slots:
                if await request.is_disconnected():
                    raise ClientGone
                self.running += 1
                try:
                    return await self._in_child(request, compute)
                finally:
                    self.running -= 1
        finally:
            self.admitted -= 1

    async def _in_child(self, request: Request, compute: Callable[[], T]) -> T:
        loop = asyncio.get_running_loop()
        read_fd, write_fd = os.pipe()
        child = self._context.Process(target=_child, args=(compute, write_fd), daemon=True)
        started = time.monotonic()
        child.start()
        os.close(write_fd)
        os.set_blocking(read_fd, False)
        chunks: list[bytes] = []
        ended = loop.create_future()

        def readable() -> None:
            # Read what the pipe holds; the answer is whole when the child closes it.
            try:
                while chunk := os.read(read_fd, 1 << 16):
                    chunks.append(chunk)
            except BlockingIOError:
                return
            if not ended.done():
                ended.set_result(None)

        loop.add_reader(read_fd, readable)
        try:
            while not ended.done():
                await asyncio.wait([ended], timeout=POLL_S)
                if ended.done():
                    break
                if await request.is_disconnected():
                    log.info("client went away: stopped its expensive request (pid %d)", child.pid)
                    raise ClientGone
                if time.monotonic() - started > self.timeout:
                    raise Overrun(
                        f"the request ran past this server's limit of {self.timeout:.0f} s and "
                        "was stopped; retry later or ask for less (fewer shifts, a shorter span)",
                        self.retry_after(),
                    )
            self._recent.append(time.monotonic() - started)
        finally:
            loop.remove_reader(read_fd)
            os.close(read_fd)
            if child.is_alive():
                child.kill()
            child.join()
        if not chunks:
            raise RuntimeError(
                f"the worker process of an expensive request died (exit {child.exitcode})"
            )
        ok, value = pickle.loads(b"".join(chunks))
        if not ok:
            raise value
        return value
