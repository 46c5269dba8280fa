"""In-run response cache: identical requests (same model, every parameter, same messages) are sent once.

Concurrent identical requests share one in-flight call. Failures are not cached, so a retry sends the
request again; successes are, so retrying a sample-mode trial re-sends only the samples that failed.
The cache lives for one run (one backend instance) and is bounded (least recently used entries go).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

T = TypeVar("T")


def request_key(model: str, params: dict[str, Any], messages: list[dict[str, str]]) -> str:
    """sha256 of the canonical JSON of model, all parameters and the messages."""
    payload = json.dumps({"model": model, "params": params, "messages": messages}, sort_keys=True, ensure_ascii=False,
                         separators=(",", ":"), default=str)
    return hashlib.sha256(payload.encode()).hexdigest()


class ResponseCache(Generic[T]):
    """Request key → result, with in-flight sharing."""

    def __init__(self, max_entries: int = 50_000):
        self.max_entries = max_entries
        self._done: OrderedDict[str, T] = OrderedDict()
        self._pending: dict[str, asyncio.Future[T]] = {}
        self.hits = 0
        self.misses = 0

    async def get_or_call(self, key: str, call: Callable[[], Awaitable[T]]) -> T:
        if key in self._done:
            self.hits += 1
            self._done.move_to_end(key)
            return self._done[key]
        pending = self._pending.get(key)
        if pending is not None:
            self.hits += 1
            return await asyncio.shield(pending)
        self.misses += 1
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._pending[key] = future
        try:
            result = await call()
        except BaseException as error:
            future.set_exception(error)
            future.exception()  # mark retrieved: waiters re-raise it, nobody else must
            raise
        else:
            future.set_result(result)
            self._done[key] = result
            if len(self._done) > self.max_entries:
                self._done.popitem(last=False)
            return result
        finally:
            del self._pending[key]
