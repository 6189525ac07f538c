"""The state stores behind the record stage: the contract, its SQL, SQLite and PostgreSQL.

`store` holds the contract every store keeps (cursors, the idempotency ledger, the watch
list, runs, the order queue) and `open_store`, which picks a store from its URL; `sql` the
statements both stores run; `sqlite` and `postgres` the two stores; `batches` where each
batched action stands; `migrations/` the versioned schema. A package because a store is
several modules that change together, and apart from the stages that use them.
"""
