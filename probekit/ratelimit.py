"""Requests-per-minute and tokens-per-minute limits for one model (one async process per key).

Two token buckets refilled continuously. The bucket holds at most `burst_seconds` worth of the limit, so
a run does not fire a whole minute's allowance in the first second (providers enforce limits over short
windows too). A 429 with Retry-After pauses every request of the model, not only the one that got it:
the provider's window is shared.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field


@dataclass
class _Bucket:
    per_minute: float
    burst_seconds: float
    level: float = field(init=False)
    stamp: float = field(init=False)

    def __post_init__(self) -> None:
        self.level = self.capacity
        self.stamp = time.monotonic()

    @property
    def capacity(self) -> float:
        return max(1.0, self.per_minute / 60.0 * self.burst_seconds)

    def refill(self, now: float) -> None:
        self.level = min(self.capacity, self.level + (now - self.stamp) * self.per_minute / 60.0)
        self.stamp = now

    def wait_for(self, amount: float) -> float:
        """Seconds until `amount` (clamped to the capacity, so a huge request can still pass) is available."""
        need = min(amount, self.capacity) - self.level
        return 0.0 if need <= 0 else need * 60.0 / self.per_minute


class RateLimiter:
    """Async limiter: `await acquire(tokens)` before each request; `hold(seconds)` after a 429."""

    def __init__(self, rpm: float | None = None, tpm: float | None = None, *, burst_seconds: float = 1.0):
        self.requests = _Bucket(rpm, burst_seconds) if rpm else None
        self.tokens = _Bucket(tpm, burst_seconds) if tpm else None
        self._paused_until = 0.0
        self._lock = asyncio.Lock()

    @property
    def active(self) -> bool:
        """True when a limit is configured or a 429 pause is running (else acquiring can be skipped)."""
        return self.requests is not None or self.tokens is not None or time.monotonic() < self._paused_until

    async def acquire(self, tokens: int = 0) -> None:
        """Wait until one request of about `tokens` tokens fits both limits, then take it."""
        # One waiter at a time keeps the order fair (FIFO on the lock) and the arithmetic simple.
        async with self._lock:
            while True:
                now = time.monotonic()
                wait = max(0.0, self._paused_until - now)
                for bucket, amount in ((self.requests, 1.0), (self.tokens, float(tokens))):
                    if bucket is not None:
                        bucket.refill(now)
                        wait = max(wait, bucket.wait_for(amount))
                if wait <= 0:
                    break
                await asyncio.sleep(wait)
            if self.requests is not None:
                self.requests.level -= 1.0
            if self.tokens is not None:
                self.tokens.level -= min(float(tokens), self.tokens.capacity)

    def settle(self, estimated: int, actual: int) -> None:
        """Correct the token bucket once the response says how many tokens the request really used."""
        if self.tokens is not None:
            self.tokens.level -= actual - estimated

    def hold(self, seconds: float) -> None:
        """Pause all requests for `seconds` (a 429 told us the provider's window is full)."""
        self._paused_until = max(self._paused_until, time.monotonic() + seconds)
