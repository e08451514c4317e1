-- Task log limits, webhook callbacks, and what survives retention: figures of
-- pruned tasks (for statistics) and their ids (so a read answers 410 Gone).
-- Times are Unix seconds (REAL, UTC).

ALTER TABLE tasks ADD COLUMN log_lines INTEGER NOT NULL DEFAULT 0;
ALTER TABLE tasks ADD COLUMN log_dropped INTEGER NOT NULL DEFAULT 0;
ALTER TABLE tasks ADD COLUMN callback_url TEXT;

-- The per-task number of a log line, NULL for other kinds of event.
ALTER TABLE events ADD COLUMN log_seq INTEGER;

CREATE INDEX events_task_log_seq ON events (task_id, log_seq) WHERE log_seq IS NOT NULL;

-- Serves retention, statistics and the finished counts of /metrics.
CREATE INDEX tasks_finished_at ON tasks (finished_at) WHERE finished_at IS NOT NULL;
CREATE INDEX tasks_with_callback ON tasks (state) WHERE callback_url IS NOT NULL;

-- One row per worker, final state and hour of finishing, folded from the
-- tasks that retention deleted. Histograms are JSON objects that map a
-- bucket index of tasky.statistics.Histogram to a count.
CREATE TABLE task_aggregates (
    worker TEXT NOT NULL,
    state TEXT NOT NULL,
    hour REAL NOT NULL,
    count INTEGER NOT NULL,
    run_count INTEGER NOT NULL,
    run_sum_s REAL NOT NULL,
    run_max_s REAL,
    run_histogram TEXT NOT NULL,
    wait_count INTEGER NOT NULL,
    wait_sum_s REAL NOT NULL,
    wait_max_s REAL,
    wait_histogram TEXT NOT NULL,
    PRIMARY KEY (worker, state, hour)
);

CREATE TABLE pruned_tasks (
    id TEXT PRIMARY KEY,
    worker TEXT NOT NULL,
    state TEXT NOT NULL,
    finished_at REAL NOT NULL,
    pruned_at REAL NOT NULL
);

CREATE INDEX pruned_tasks_pruned_at ON pruned_tasks (pruned_at);

-- One webhook delivery per finished attempt of a task that named a callback_url.
CREATE TABLE callback_deliveries (
    task_id TEXT NOT NULL,
    task_attempt INTEGER NOT NULL,
    url TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_at REAL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    PRIMARY KEY (task_id, task_attempt)
);

CREATE INDEX callback_deliveries_due ON callback_deliveries (next_at) WHERE state = 'pending';

CREATE TABLE callback_attempts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    task_id TEXT NOT NULL,
    task_attempt INTEGER NOT NULL,
    number INTEGER NOT NULL,
    at REAL NOT NULL,
    duration_s REAL NOT NULL,
    status_code INTEGER,
    error TEXT
);

CREATE INDEX callback_attempts_task ON callback_attempts (task_id, id);
