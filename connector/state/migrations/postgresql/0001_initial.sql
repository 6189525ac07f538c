-- 0001: cursors, the idempotency ledger and the watch list (PostgreSQL).
--
-- The same tables, columns and types as migrations/sqlite/0001_initial.sql: TEXT timestamps
-- in fixed-width UTC ISO-8601 (YYYY-MM-DDTHH:MM:SS.ffffffZ) that order and compare as
-- strings; INTEGER 0/1 for booleans; JSON documents as TEXT. One difference: text columns
-- use the "C" collation, so ordering and comparisons are byte-wise as in SQLite whatever
-- the database's locale (a language collation can order ids differently, or ignore the
-- punctuation of a timestamp).
-- The runner creates schema_version itself and records each file it applies there; the
-- whole migration runs in one transaction under an advisory lock.

-- Where each flow's listing resumes (an opaque string: a timestamp or a page token).
CREATE TABLE cursors (
    flow TEXT COLLATE "C" PRIMARY KEY,
    value TEXT COLLATE "C" NOT NULL,
    updated_at TEXT COLLATE "C" NOT NULL
);

-- One row per idempotency key: the intent is inserted as 'pending' before the request is
-- sent, and moves to 'done' (with the step outputs), 'failed' or 'parked' afterwards.
CREATE TABLE ledger (
    idem_key TEXT COLLATE "C" PRIMARY KEY,
    flow TEXT COLLATE "C" NOT NULL,
    order_id TEXT COLLATE "C" NOT NULL,
    action TEXT COLLATE "C" NOT NULL,
    summary TEXT COLLATE "C" NOT NULL,
    status TEXT COLLATE "C" NOT NULL CHECK (status IN ('pending', 'done', 'failed', 'parked')),
    attempts INTEGER NOT NULL DEFAULT 0,
    retryable INTEGER NOT NULL DEFAULT 1,
    error TEXT COLLATE "C",
    outputs TEXT COLLATE "C",
    created_at TEXT COLLATE "C" NOT NULL,
    updated_at TEXT COLLATE "C" NOT NULL,
    completed_at TEXT COLLATE "C"
);
CREATE INDEX ledger_flow_status ON ledger (flow, status);
CREATE INDEX ledger_flow_order ON ledger (flow, order_id);

-- Orders to look at again on later runs even when their source did not change, until
-- `until_at` (e.g. a VTEX cancellation request awaiting its second step).
CREATE TABLE watch (
    flow TEXT COLLATE "C" NOT NULL,
    order_id TEXT COLLATE "C" NOT NULL,
    until_at TEXT COLLATE "C" NOT NULL,
    payload TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (flow, order_id)
);
