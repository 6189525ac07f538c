-- 0005: batched actions (one Amazon feed for many orders) and steps that wait without
-- blocking the run.
--
-- * batches: one row per batch of one action, with where it stands: 'open' (steps before
--   the effect: nothing happened yet), 'sending' (the effect step sent, its answer not yet
--   recorded), 'unknown' (the effect got no answer: settled by the mapping's recover step),
--   'waiting' (the effect done, a poll not yet satisfied: checked again after check_after),
--   'done'. context is the steps' context (each member's, settings left out: secrets are
--   never stored); outputs the steps' outputs so far.
-- * batch_members: which idempotency keys a live batch holds, so that a run that meets the
--   order again waits for the batch instead of sending its action a second time.
CREATE TABLE batches (
    batch_id TEXT COLLATE "C" PRIMARY KEY,
    flow_key TEXT COLLATE "C" NOT NULL,
    action TEXT COLLATE "C" NOT NULL,
    status TEXT COLLATE "C" NOT NULL CHECK (status IN ('open', 'sending', 'unknown', 'waiting', 'done')),
    step INTEGER NOT NULL,
    polls INTEGER NOT NULL DEFAULT 0,
    outputs TEXT NOT NULL,
    context TEXT NOT NULL,
    check_after TEXT COLLATE "C" NOT NULL,
    created_at TEXT COLLATE "C" NOT NULL,
    updated_at TEXT COLLATE "C" NOT NULL
);
CREATE INDEX batches_flow_status ON batches (flow_key, status);
CREATE TABLE batch_members (
    idem_key TEXT COLLATE "C" PRIMARY KEY,
    batch_id TEXT COLLATE "C" NOT NULL,
    position INTEGER NOT NULL
);
CREATE INDEX batch_members_batch ON batch_members (batch_id);
