-- 0001: cursors, the idempotency ledger and the watch list.
--
-- Portable SQL, shared with the PostgreSQL store to come: TEXT timestamps in fixed-width
-- UTC ISO-8601 (YYYY-MM-DDTHH:MM:SS.ffffffZ) so that they order and compare as strings;
-- INTEGER 0/1 for booleans; JSON documents as TEXT; no AUTOINCREMENT, no dialect functions.
-- The runner creates schema_version itself and records each file it applies there.

-- Where each flow's listing resumes (an opaque string: a timestamp or a page token).
CREATE TABLE cursors (
    flow TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

-- One row per idempotency key: the intent is inserted as 'pending' before the request is
-- sent, and moves to 'done' (with the step outputs), 'failed' or 'parked' afterwards.
CREATE TABLE ledger (
    idem_key TEXT PRIMARY KEY,
    flow TEXT NOT NULL,
    order_id TEXT NOT NULL,
    action TEXT NOT NULL,
    summary TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'done', 'failed', 'parked')),
    attempts INTEGER NOT NULL DEFAULT 0,
    retryable INTEGER NOT NULL DEFAULT 1,
    error TEXT,
    outputs TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    completed_at TEXT
);
CREATE INDEX ledger_flow_status ON ledger (flow, status);
CREATE INDEX ledger_flow_order ON ledger (flow, order_id);

-- Orders to look at again on later runs even when their source did not change, until
-- `until_at` (e.g. a VTEX cancellation request awaiting its second step).
CREATE TABLE watch (
    flow TEXT NOT NULL,
    order_id TEXT NOT NULL,
    until_at TEXT NOT NULL,
    payload TEXT NOT NULL,
    PRIMARY KEY (flow, order_id)
);
