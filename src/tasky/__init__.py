"""tasky: run named, typed jobs on a server and steer them over a REST API."""

from tasky._version import __version__
from tasky.app import Tasky
from tasky.client import AsyncClient, Client
from tasky.context import TaskContext
from tasky.errors import (
    ConfigurationError,
    IllegalTransition,
    InvalidConfig,
    TaskCanceled,
    TaskNotFound,
    TaskyError,
    WorkerDisabled,
    WorkerNotFound,
)
from tasky.task import Task, TaskState
from tasky.worker import EmptyConfig, Worker, WorkerRegistry, worker

__all__ = [
    "AsyncClient",
    "Client",
    "ConfigurationError",
    "EmptyConfig",
    "IllegalTransition",
    "InvalidConfig",
    "Task",
    "TaskCanceled",
    "TaskContext",
    "TaskNotFound",
    "TaskState",
    "Tasky",
    "TaskyError",
    "Worker",
    "WorkerDisabled",
    "WorkerNotFound",
    "WorkerRegistry",
    "__version__",
    "worker",
]
