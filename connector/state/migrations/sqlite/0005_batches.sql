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
    batch_id TEXT PRIMARY KEY,
    flow_key TEXT NOT NULL,
    action TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('open', 'sending', 'unknown', 'waiting', 'done')),
    step INTEGER NOT NULL,
    polls INTEGER NOT NULL DEFAULT 0,
    outputs TEXT NOT NULL,
    context TEXT NOT NULL,
    check_after TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX batches_flow_status ON batches (flow_key, status);
CREATE TABLE batch_members (
    idem_key TEXT PRIMARY KEY,
    batch_id TEXT NOT NULL,
    position INTEGER NOT NULL
);
CREATE INDEX batch_members_batch ON batch_members (batch_id);
