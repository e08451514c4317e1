"""Task statistics: counts by state, failure rate, run and wait time figures.

Figures come from two places in the store. One is the finished tasks still
stored, whose exact durations are known. The other is the aggregates that
retention keeps of the tasks it deleted: counts, sums, maxima and a
log-bucket histogram per worker, final state and hour. Percentiles are exact while only stored
tasks are involved, and estimated from the histogram once pruned ones are.
The store reads the rows; this module only computes.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from tasky.task import TaskState

# Histogram buckets start at 0.1 ms and are 2**(1/8) wide (about 9 %), so a
# percentile estimated from the middle of its bucket is off by at most ~4.5 %.
HISTOGRAM_MIN_S = 1e-4
BUCKETS_PER_DOUBLING = 8

FAILED_STATES = (TaskState.FAILED.value, TaskState.TIMED_OUT.value)
OUTCOME_STATES = (TaskState.COMPLETED.value, *FAILED_STATES)
HOUR_S = 3600.0
MINUTE_S = 60.0


def bucket_index(value_s: float) -> int:
    """Return the histogram bucket of a duration; bucket 0 contains everything below 0.1 ms."""
    if value_s < HISTOGRAM_MIN_S:
        return 0
    return 1 + int(math.floor(math.log2(value_s / HISTOGRAM_MIN_S) * BUCKETS_PER_DOUBLING))


def bucket_middle(index: int) -> float:
    """Return the geometric middle of a bucket, the value that estimates the durations in it."""
    if index == 0:
        return HISTOGRAM_MIN_S / 2
    low = HISTOGRAM_MIN_S * 2 ** ((index - 1) / BUCKETS_PER_DOUBLING)
    return low * 2 ** (0.5 / BUCKETS_PER_DOUBLING)


@dataclass
class Histogram:
    """Counts of durations per log-spaced bucket; stored as JSON in task aggregates."""

    counts: dict[int, int] = field(default_factory=dict)

    def add(self, value_s: float, count: int = 1) -> None:
        index = bucket_index(value_s)
        self.counts[index] = self.counts.get(index, 0) + count

    def merge(self, other: Histogram) -> None:
        for index, count in other.counts.items():
            self.counts[index] = self.counts.get(index, 0) + count

    def to_json(self) -> dict[str, int]:
        return {str(index): count for index, count in sorted(self.counts.items())}

    @classmethod
    def from_json(cls, data: Mapping[str, int]) -> Histogram:
        return cls({int(index): int(count) for index, count in data.items()})

    def quantile(self, q: float) -> float | None:
        """Estimate the q-quantile (0..1) as the middle of the bucket that contains that rank."""
        total = sum(self.counts.values())
        if total == 0:
            return None
        rank = max(1, math.ceil(q * total))
        seen = 0
        for index in sorted(self.counts):
            seen += self.counts[index]
            if seen >= rank:
                return bucket_middle(index)
        return bucket_middle(max(self.counts))


@dataclass
class DurationFigures:
    """Durations of one kind (run or wait): exact values of stored tasks plus pruned aggregates."""

    values: list[float] = field(default_factory=list)
    archived_count: int = 0
    archived_sum_s: float = 0.0
    archived_max_s: float | None = None
    archived: Histogram = field(default_factory=Histogram)

    def add_archived(self, count: int, sum_s: float, max_s: float | None, histogram: Histogram) -> None:
        self.archived_count += count
        self.archived_sum_s += sum_s
        if max_s is not None:
            self.archived_max_s = max(max_s, self.archived_max_s or 0.0)
        self.archived.merge(histogram)

    @property
    def count(self) -> int:
        return len(self.values) + self.archived_count

    def summary(self, quantiles: Iterable[tuple[str, float]]) -> dict[str, Any]:
        """Build {count, mean, max, p50, ...} in seconds; None where no duration is known."""
        body: dict[str, Any] = {"count": self.count, "mean": None, "max": None}
        body.update({name: None for name, _ in quantiles})
        if self.count == 0:
            return body
        body["mean"] = _round((sum(self.values) + self.archived_sum_s) / self.count)
        maxima = [*self.values, *([self.archived_max_s] if self.archived_max_s is not None else [])]
        body["max"] = _round(max(maxima)) if maxima else None
        for name, q in quantiles:
            body[name] = _round(self._quantile(q, body["max"]))
        return body

    def _quantile(self, q: float, max_s: float | None) -> float | None:
        if self.archived_count == 0:
            return exact_quantile(sorted(self.values), q)
        merged = Histogram(dict(self.archived.counts))
        for value in self.values:
            merged.add(value)
        estimate = merged.quantile(q)
        if estimate is None or max_s is None:
            return estimate
        return min(estimate, max_s)


def exact_quantile(ordered: list[float], q: float) -> float | None:
    """Return the q-quantile of sorted values, interpolating linearly between ranks."""
    if not ordered:
        return None
    position = q * (len(ordered) - 1)
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


@dataclass(frozen=True)
class FinishedRun:
    """Durations of one stored finished task; run and wait are None when it never started."""

    worker: str
    state: str
    finished_at: float
    run_s: float | None
    wait_s: float | None


@dataclass(frozen=True)
class ArchivedFigures:
    """Aggregates of pruned tasks of one worker that ended in one state within one hour."""

    worker: str
    state: str
    hour: float
    count: int
    run_count: int
    run_sum_s: float
    run_max_s: float | None
    run_histogram: Histogram
    wait_count: int
    wait_sum_s: float
    wait_max_s: float | None
    wait_histogram: Histogram


@dataclass
class StatisticsInput:
    """Rows the store returns for one statistics response (one worker or all of them)."""

    counts: dict[str, int]
    runs: list[FinishedRun]
    archived: list[ArchivedFigures]


def compute_statistics(data: StatisticsInput, *, now: float) -> dict[str, Any]:
    """Compute the statistics body from stored and pruned figures."""
    counts = {state.value: 0 for state in TaskState}
    for state, count in data.counts.items():
        counts[state] = counts.get(state, 0) + count
    run, wait = DurationFigures(), DurationFigures()
    finished_last_minute = finished_last_hour = pruned = 0

    for item in data.runs:
        if item.run_s is not None:
            run.values.append(item.run_s)
        if item.wait_s is not None:
            wait.values.append(item.wait_s)
        finished_last_minute += item.finished_at >= now - MINUTE_S
        finished_last_hour += item.finished_at >= now - HOUR_S

    for block in data.archived:
        counts[block.state] = counts.get(block.state, 0) + block.count
        pruned += block.count
        run.add_archived(block.run_count, block.run_sum_s, block.run_max_s, block.run_histogram)
        wait.add_archived(block.wait_count, block.wait_sum_s, block.wait_max_s, block.wait_histogram)
        # Pruned tasks are known by their hour only: an hour that overlaps the window counts whole.
        finished_last_minute += block.count if block.hour + HOUR_S > now - MINUTE_S else 0
        finished_last_hour += block.count if block.hour + HOUR_S > now - HOUR_S else 0

    outcomes = sum(counts[state] for state in OUTCOME_STATES)
    failures = sum(counts[state] for state in FAILED_STATES)
    return {
        "counts": counts,
        "total": sum(counts.values()),
        "failure_rate": round(failures / outcomes, 6) if outcomes else None,
        "run_time_s": run.summary((("p50", 0.5), ("p95", 0.95))),
        "wait_time_s": wait.summary((("p50", 0.5), ("p95", 0.95))),
        "finished_last_minute": finished_last_minute,
        "finished_last_hour": finished_last_hour,
        "pruned_tasks": pruned,
        "percentiles": "estimated" if pruned else "exact",
    }


def _round(value: float | None) -> float | None:
    return round(value, 6) if value is not None else None
