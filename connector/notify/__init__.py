"""Change notifications as the trigger of runs (issue 9): a mapping's `notifications:`.

A source mapping declares where its change notifications arrive and how to read them, as
data: the queue's transport (`sqs`), its URL (a template over the settings; empty turns
notifications off) and JMESPath expressions over a message body to the order id, to the
partition key (Amazon's marketplace id) and to whether the message is one to act on
(`accept`). The engine knows the protocol, the same for every vendor:

- `receive`: a long-poll receive of a batch of messages; each accepted message's order is
  queued in the state store (`order_queue`) for every flow partition of that source that
  covers its partition key, in one committed transaction, and only then is the message
  deleted from its queue. A crash in between re-delivers the message: queueing an order again
  is harmless. A message that names no order, or a partition no flow runs, is reported and
  deleted (polling still lists the order, if it is one of ours).
- a running `connector worker` receives in a background thread and queues the notified
  partitions' runs at once (the scheduling tick need not come first); `--once` empties the
  queues before running every partition.
- `queued`: each run of a flow partition reads its queued orders by id (`orders.get`)
  beside its listing, evaluates them like listed ones and then removes their rows.

Polling stays the catch-up: anything a notification missed is listed by the cursor.
"""
