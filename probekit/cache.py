"""In-run response cache: identical requests (same model, every parameter, same prompt) are sent once.

Keys are the runtime's frozen request objects (or any hashable). Concurrent identical requests share one
in-flight call. Failures are not cached, so a retry sends the request again; successes are, so retrying a
sample-mode trial re-sends only the samples that failed. The cache lives for one run (one runtime per
model) and is bounded (least recently used entries go).
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable, Sequence
from typing import Any, Generic, TypeVar

from probekit.hashing import compact_json, sha256_hex

T = TypeVar("T")


def request_key(model: str, params: dict[str, Any], messages: list[dict[str, str]]) -> str:
    """sha256 of the canonical JSON of model, all parameters and the messages (for keys that must persist)."""
    return sha256_hex(compact_json({"model": model, "params": params, "messages": messages}, default=str))


class _Missing:
    pass


class ResponseCache(Generic[T]):
    """Request → result, with in-flight sharing."""

    MISSING: Any = _Missing()

    def __init__(self, max_entries: int = 50_000):
        self.max_entries = max_entries
        self._done: OrderedDict[Hashable, T] = OrderedDict()
        self._pending: dict[Hashable, asyncio.Future[T]] = {}
        self.hits = 0
        self.misses = 0

    def peek(self, key: Hashable) -> Any:
        """The cached result, the in-flight future, or MISSING (counts a hit unless MISSING)."""
        if key in self._done:
            self.hits += 1
            self._done.move_to_end(key)
            return self._done[key]
        pending = self._pending.get(key)
        if pending is not None:
            self.hits += 1
            return pending
        return self.MISSING

    def reserve(self, keys: Sequence[Hashable]) -> list[tuple[Hashable, asyncio.Future[T]]]:
        """Mark keys as in flight (later identical requests wait for this call)."""
        loop = asyncio.get_running_loop()
        reserved = []
        for key in keys:
            self.misses += 1
            future: asyncio.Future[T] = loop.create_future()
            self._pending[key] = future
            reserved.append((key, future))
        return reserved

    def fill(self, reserved: list[tuple[Hashable, asyncio.Future[T]]], values: Sequence[T]) -> None:
        for (key, future), value in zip(reserved, values):
            future.set_result(value)
            self._pending.pop(key, None)
            self._store(key, value)

    def fail(self, reserved: list[tuple[Hashable, asyncio.Future[T]]], error: BaseException) -> None:
        for key, future in reserved:
            future.set_exception(error)
            future.exception()  # mark retrieved: waiters re-raise it, nobody else must
            self._pending.pop(key, None)

    def _store(self, key: Hashable, value: T) -> None:
        self._done[key] = value
        if len(self._done) > self.max_entries:
            self._done.popitem(last=False)

    async def get_or_call(self, key: Hashable, call: Callable[[], Awaitable[T]]) -> T:
        state = self.peek(key)
        if isinstance(state, asyncio.Future):
            return await asyncio.shield(state)
        if state is not self.MISSING:
            return state  # type: ignore[no-any-return]
        reserved = self.reserve([key])
        try:
            result = await call()
        except BaseException as error:
            self.fail(reserved, error)
            raise
        self.fill(reserved, [result])
        return result
