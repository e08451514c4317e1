"""The executor: claims tasks within limits, runs them and delivers control requests."""

from tasky.executor.attempt import Attempt
from tasky.executor.executor import Executor

__all__ = ["Attempt", "Executor"]
