"""Counts and time limits of one suite run: the full run and the smaller `--quick` one."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Settings:
    quick: bool
    workdir: Path  # temporary folder for stores, sockets and logs
    runs: int  # repetitions of each throughput measurement; the median is reported
    e2e_tasks: int  # no-op tasks per end-to-end run
    submit_duration_s: float  # length of one submit load run
    connections: int  # keep-alive connections of the submit load
    e2e_connections: int  # keep-alive connections that submit the end-to-end tasks
    round_trips: int
    cancels: int
    scale_small: int  # stored tasks of the baseline latency measurement
    scale_middle: int  # finished tasks run through the node before the first RSS reading
    scale_total: int  # stored tasks of the large latency measurement
    latency_requests: int  # requests per latency measurement of the scale part
    run_timeout_s: float  # maximum duration of one throughput run
    profile_duration_s: float


def make_settings(quick: bool, workdir: Path) -> Settings:
    if quick:
        return Settings(
            quick=True, workdir=workdir, runs=1, e2e_tasks=2_000, submit_duration_s=4, connections=64,
            e2e_connections=32, round_trips=100, cancels=20, scale_small=1_000, scale_middle=10_000,
            scale_total=100_000, latency_requests=300, run_timeout_s=60, profile_duration_s=4,
        )
    return Settings(
        quick=False, workdir=workdir, runs=3, e2e_tasks=10_000, submit_duration_s=10, connections=64,
        e2e_connections=32, round_trips=200, cancels=50, scale_small=1_000, scale_middle=100_000,
        scale_total=1_000_000, latency_requests=1_000, run_timeout_s=120, profile_duration_s=8,
    )
