-- 0004: what `connector status` and `connector retry` need, and the 'settled' status (see
-- the SQLite migration of the same number for each change's reason).
ALTER TABLE ledger DROP CONSTRAINT ledger_status_check;
ALTER TABLE ledger ADD CONSTRAINT ledger_status_check
    CHECK (status IN ('pending', 'done', 'failed', 'parked', 'settled'));
ALTER TABLE ledger ADD COLUMN partition_key TEXT COLLATE "C" NOT NULL DEFAULT '';

CREATE TABLE runs (
    flow_key TEXT COLLATE "C" PRIMARY KEY,
    flow TEXT COLLATE "C" NOT NULL,
    partition_key TEXT COLLATE "C" NOT NULL,
    started_at TEXT COLLATE "C" NOT NULL,
    duration_seconds DOUBLE PRECISION NOT NULL,
    outcome TEXT COLLATE "C" NOT NULL,
    counts TEXT COLLATE "C" NOT NULL
);
