"""Retry policy of a worker: how many attempts, how long to wait between them."""

from __future__ import annotations

import random
from dataclasses import dataclass

from tasky.errors import ConfigurationError


@dataclass(frozen=True)
class RetryPolicy:
    """Retry a failed attempt after an exponential backoff with jitter.

    Attempt n (from 1) that fails with one of `retry_on` is followed by
    attempt n + 1 after `backoff_s * 2 ** (n - 1)` seconds, capped at
    `backoff_max_s` and spread by up to `jitter` (a fraction) either way.
    """

    max_attempts: int = 3
    backoff_s: float = 1.0
    backoff_max_s: float = 300.0
    jitter: float = 0.2
    retry_on: tuple[type[BaseException], ...] = (Exception,)

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ConfigurationError(f"max_attempts must be at least 1, got {self.max_attempts}")
        if self.backoff_s < 0 or self.backoff_max_s < 0:
            raise ConfigurationError("backoff_s and backoff_max_s must not be negative")
        if not 0 <= self.jitter <= 1:
            raise ConfigurationError(f"jitter must be between 0 and 1, got {self.jitter}")

    def should_retry(self, exc: BaseException, attempt: int) -> bool:
        return attempt < self.max_attempts and isinstance(exc, self.retry_on)

    def delay_s(self, attempt: int, rng: random.Random | None = None) -> float:
        """Return the wait before the attempt that follows `attempt`."""
        base = min(self.backoff_max_s, self.backoff_s * 2 ** (attempt - 1))
        spread = (rng or random).uniform(-self.jitter, self.jitter)
        return max(0.0, base * (1 + spread))

    def describe(self) -> dict[str, object]:
        return {
            "max_attempts": self.max_attempts,
            "backoff_s": self.backoff_s,
            "backoff_max_s": self.backoff_max_s,
            "jitter": self.jitter,
            "retry_on": [kind.__qualname__ for kind in self.retry_on],
        }
