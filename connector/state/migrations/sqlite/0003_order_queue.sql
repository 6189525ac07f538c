-- 0003: orders queued by change notifications (an SQS ORDER_CHANGE message), per flow
-- partition, for the partition's next run to read again by id.
--
-- One row per (flow, partition, order): a second notification for a queued order bumps
-- `version`, so a run that read version 1 and then removes the row (DELETE … AND version =
-- 1) leaves an order notified again meanwhile queued for the next run. The message is
-- deleted from its queue only after this row commits: a crash in between re-delivers it,
-- and queueing an order twice is harmless.
CREATE TABLE order_queue (
    flow TEXT NOT NULL,
    partition_key TEXT NOT NULL,
    order_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    queued_at TEXT NOT NULL,
    PRIMARY KEY (flow, partition_key, order_id)
);
