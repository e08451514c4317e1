-- Task control: retries, timeouts, restart links, config edits, idempotency
-- keys, per-attempt history and operator switches on workers.

ALTER TABLE tasks ADD COLUMN run_after REAL;
ALTER TABLE tasks ADD COLUMN timeout_s REAL;
ALTER TABLE tasks ADD COLUMN restart_of TEXT;
ALTER TABLE tasks ADD COLUMN restarted_as TEXT;
ALTER TABLE tasks ADD COLUMN config_version INTEGER NOT NULL DEFAULT 1;

CREATE TABLE attempts (
    task_id TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    started_at REAL,
    finished_at REAL NOT NULL,
    outcome TEXT NOT NULL,
    error TEXT,
    PRIMARY KEY (task_id, attempt)
);

CREATE TABLE worker_settings (
    name TEXT PRIMARY KEY,
    enabled INTEGER NOT NULL,
    reason TEXT,
    updated_at REAL NOT NULL
);

CREATE TABLE idempotency_keys (
    key TEXT NOT NULL,
    worker TEXT NOT NULL,
    body_hash TEXT NOT NULL,
    task_id TEXT NOT NULL,
    created_at REAL NOT NULL,
    PRIMARY KEY (worker, key)
);

CREATE INDEX idempotency_keys_created_at ON idempotency_keys (created_at);
