-- 0002: token buckets shared by every process on this state store (fleet-wide rate limits).
--
-- One row per bucket: an account's operation ("<account>/<system>/<operation>"). `tokens`
-- may go negative: a process reserves a token now and sleeps off the debt, so processes are
-- served in arrival order with one sleep each. `stamp` is the wall-clock time (seconds since
-- the epoch) the tokens were last counted at; the refill rate and the burst are not stored,
-- each process sends the ones it knows (declared, or learned from a response header).
CREATE TABLE rate_buckets (
    bucket TEXT PRIMARY KEY,
    tokens REAL NOT NULL,
    stamp REAL NOT NULL
);
