"""The executor: claims tasks within limits, runs them and delivers control requests."""

from tasky.executor.executor import Executor, RunningTask

__all__ = ["Executor", "RunningTask"]
