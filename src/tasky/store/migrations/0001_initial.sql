-- Tasks, their events (state changes, progress, log lines) and worker settings.
-- Times are Unix seconds (REAL, UTC).

CREATE TABLE tasks (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    worker TEXT NOT NULL,
    state TEXT NOT NULL,
    config TEXT NOT NULL,
    attempt INTEGER NOT NULL DEFAULT 1,
    created_at REAL NOT NULL,
    started_at REAL,
    finished_at REAL,
    paused_at REAL,
    paused_total_s REAL NOT NULL DEFAULT 0,
    progress_done REAL,
    progress_total REAL,
    progress_message TEXT,
    progress_at REAL,
    result TEXT,
    error TEXT,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    node TEXT,
    updated_at REAL NOT NULL
);

-- Serves the claim (oldest queued of a worker) and the list filters.
CREATE INDEX tasks_worker_state_seq ON tasks (worker, state, seq);
CREATE INDEX tasks_state_seq ON tasks (state, seq);
CREATE INDEX tasks_worker_seq ON tasks (worker, seq);

CREATE TABLE events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    task_id TEXT NOT NULL,
    worker TEXT NOT NULL,
    at REAL NOT NULL,
    kind TEXT NOT NULL,
    data TEXT NOT NULL
);

CREATE INDEX events_task_id ON events (task_id, id);
