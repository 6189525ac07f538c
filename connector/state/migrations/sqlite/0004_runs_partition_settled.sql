-- 0004: what `connector status` and `connector retry` need, and the 'settled' status.
--
-- * runs: the last run of each flow partition (when, how long, how it ended, its counts),
--   one row per partition, replaced by each run: status reports it, nothing accumulates.
-- * ledger.partition_key: the partition whose run began the entry, so that `connector retry`
--   queues its order for that partition's run (two partitions' runs never read one order).
-- * ledger status 'settled': a write whose outcome was unknown (5xx, timeout, dropped
--   connection) that a fresh read showed is no longer called for, told apart from 'pending'.
--
-- SQLite cannot alter a CHECK constraint, so the ledger is rebuilt (inside the migration's
-- transaction: a crash leaves the old table or the new one, never half of each).
CREATE TABLE ledger_0004 (
    idem_key TEXT PRIMARY KEY,
    flow TEXT NOT NULL,
    order_id TEXT NOT NULL,
    action TEXT NOT NULL,
    summary TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'done', 'failed', 'parked', 'settled')),
    attempts INTEGER NOT NULL DEFAULT 0,
    retryable INTEGER NOT NULL DEFAULT 1,
    error TEXT,
    outputs TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    completed_at TEXT,
    partition_key TEXT NOT NULL DEFAULT ''
);
INSERT INTO ledger_0004 (idem_key, flow, order_id, action, summary, status, attempts, retryable,
                         error, outputs, created_at, updated_at, completed_at)
    SELECT idem_key, flow, order_id, action, summary, status, attempts, retryable, error,
           outputs, created_at, updated_at, completed_at FROM ledger;
DROP TABLE ledger;
ALTER TABLE ledger_0004 RENAME TO ledger;
CREATE INDEX ledger_flow_status ON ledger (flow, status);
CREATE INDEX ledger_flow_order ON ledger (flow, order_id);

CREATE TABLE runs (
    flow_key TEXT PRIMARY KEY,
    flow TEXT NOT NULL,
    partition_key TEXT NOT NULL,
    started_at TEXT NOT NULL,
    duration_seconds REAL NOT NULL,
    outcome TEXT NOT NULL,
    counts TEXT NOT NULL
);
