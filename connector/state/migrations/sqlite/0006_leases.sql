-- 0006: fencing (see connector/fence.py): a lease per flow partition, and the lease that
-- wrote each ledger entry.
--
-- * leases: one row per flow key (flow or flow@partition). `epoch` goes up by one at each
--   take-over; every write of a run checks, in its own transaction, that the epoch is still
--   the one its run took, so a run whose lock session ended while it lived on (and whose
--   partition another process took) changes nothing more. `owner` names the holder (pid,
--   host, run id) for messages; `taken_at` when it took the lease; `fence_until` the time
--   before which a pending entry of an earlier epoch may still be in flight (a request whose
--   check passed just before the take-over): such an entry is settled by reading only after.
--   `released`: 1 once the holder's run ended with nothing in flight, so the next take-over
--   keeps the fence time as it was instead of adding a grace period.
-- * ledger.lease_key, lease_epoch, owner: the lease whose run recorded the intent (or the
--   latest resend); '' and 0 for entries written before this migration.
CREATE TABLE leases (
    flow_key TEXT PRIMARY KEY,
    epoch INTEGER NOT NULL,
    owner TEXT NOT NULL,
    taken_at TEXT NOT NULL,
    fence_until TEXT NOT NULL,
    released INTEGER NOT NULL DEFAULT 0
);
ALTER TABLE ledger ADD COLUMN lease_key TEXT NOT NULL DEFAULT '';
ALTER TABLE ledger ADD COLUMN lease_epoch INTEGER NOT NULL DEFAULT 0;
ALTER TABLE ledger ADD COLUMN owner TEXT NOT NULL DEFAULT '';
