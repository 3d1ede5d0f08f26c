"""Enforce a call's overall deadline on the socket it is reading.

A socket timeout limits each wait for bytes, not the whole exchange: a
server that sends one byte a second keeps a read alive forever. The
watchdog closes the loop: a socket registered with a deadline is shut down
when the deadline passes, which wakes the thread blocked on it with an end
of file, whatever it was reading (a status line, headers, a chunk size, a
body). The caller then sees :attr:`Watch.fired` and reports the deadline.

One daemon thread serves every watch of the process; it starts on the
first watch and sleeps until the earliest deadline.
"""

from __future__ import annotations

import heapq
import itertools
import socket
import threading
import time
from typing import List, Optional

__all__ = ["Watch", "watch_socket"]


class Watch:
    """One socket watched until :meth:`stop` (or until its deadline fires)."""

    __slots__ = ("at", "fired", "order", "sock")

    def __init__(self, sock: socket.socket, at: float, order: int) -> None:
        self.at = at
        self.order = order
        self.sock: Optional[socket.socket] = sock
        #: True once the deadline passed and the socket was shut down.
        self.fired = False

    def __lt__(self, other: "Watch") -> bool:
        return (self.at, self.order) < (other.at, other.order)

    def stop(self) -> None:
        """Stop watching. Once this returns, the watchdog no longer touches
        the socket, so it may go back to the connection pool (unless
        :attr:`fired`)."""
        if self.sock is not None:
            _WATCHDOG.forget(self)


class _Watchdog:
    def __init__(self) -> None:
        self._condition = threading.Condition(threading.Lock())
        self._heap: List[Watch] = []
        self._stopped = 0  # stopped watches still in the heap
        self._order = itertools.count()
        self._thread: Optional[threading.Thread] = None

    def watch(self, sock: socket.socket, at: float) -> Watch:
        entry = Watch(sock, at, next(self._order))
        with self._condition:
            heapq.heappush(self._heap, entry)
            # Also after a fork: the child has no thread until it starts one.
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="replicate_qwen_sdk-deadlines", daemon=True)
                self._thread.start()
            if self._heap[0] is entry:
                self._condition.notify()
        return entry

    def forget(self, entry: Watch) -> None:
        with self._condition:
            if entry.sock is None:
                return
            entry.sock = None
            self._stopped += 1
            # Stopped watches leave the heap when they reach its top; purge
            # them in bulk when they are most of it (long deadlines, many calls).
            if self._stopped > 64 and self._stopped * 2 > len(self._heap):
                self._heap = [live for live in self._heap if live.sock is not None]
                heapq.heapify(self._heap)
                self._stopped = 0

    def _run(self) -> None:
        with self._condition:
            while True:
                heap = self._heap
                while heap and heap[0].sock is None:
                    heapq.heappop(heap)
                    self._stopped -= 1
                if not heap:
                    self._condition.wait()
                    continue
                wait = heap[0].at - time.monotonic()
                if wait > 0:
                    self._condition.wait(wait)
                    continue
                entry = heapq.heappop(heap)
                sock, entry.sock = entry.sock, None
                entry.fired = True
                # Under the lock: once stop() returns, this cannot run.
                try:
                    sock.shutdown(socket.SHUT_RDWR)  # type: ignore[union-attr]
                except OSError:
                    pass


_WATCHDOG = _Watchdog()


def watch_socket(sock: socket.socket, seconds_left: float) -> Watch:
    """Shut ``sock`` down in ``seconds_left`` seconds unless the returned
    :class:`Watch` is stopped first."""
    return _WATCHDOG.watch(sock, time.monotonic() + seconds_left)
