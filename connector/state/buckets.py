"""Token buckets shared by every process of one state store (`connector.transport.ratelimit`):
one upsert per token, so processes racing for a bucket are serialised by the database."""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any, Protocol


class _Executor(Protocol):
    def execute(self, sql: str, params: tuple[Any, ...], /) -> Any: ...


class BucketRecords:
    """The token-bucket statements, shared by both stores as `SqlStore`'s are."""

    def _write(self) -> AbstractContextManager[_Executor]:
        raise NotImplementedError

    def _bucket_write(self) -> AbstractContextManager[_Executor]:
        """The transaction of one token-bucket update. A store may make it cheaper than
        `_write` (no fsync): a lost bucket update costs at most a few early requests after a
        crash, never a duplicate action, so it needs no durability."""
        return self._write()

    def take_token(self, bucket: str, *, rate: float, burst: int, now: float) -> float:
        """Take one token from `bucket` (created full), refilled at `rate` per second up to
        `burst` since it was last counted; return the tokens left, negative when the caller
        must wait `-tokens / rate` seconds. One statement, so processes racing for a bucket
        are serialised by the database's row lock and none can take a token twice."""
        with self._bucket_write() as conn:
            row = conn.execute(
                "INSERT INTO rate_buckets (bucket, tokens, stamp) VALUES (?, ?, ?) "
                f"ON CONFLICT (bucket) DO UPDATE SET tokens = {_REFILLED} - 1, "
                f"stamp = {_LATEST} RETURNING tokens",
                (bucket, float(burst) - 1.0, float(now), float(rate), float(burst),
                 float(burst), float(rate))).fetchone()
        return float(row[0])

    def drain_bucket(self, bucket: str, *, rate: float, burst: int, now: float) -> None:
        """Empty `bucket` (debts stay) after a 429: the server's bucket is empty, so every
        process sharing it should wait for the next refill, not only the one that was told."""
        with self._bucket_write() as conn:
            conn.execute(
                "INSERT INTO rate_buckets (bucket, tokens, stamp) VALUES (?, 0, ?) "
                f"ON CONFLICT (bucket) DO UPDATE SET tokens = CASE WHEN {_REFILLED} > 0 "
                f"THEN 0 ELSE {_REFILLED} END, stamp = {_LATEST}",
                (bucket, float(now), float(rate), float(burst), float(burst), float(rate),
                 float(rate), float(burst), float(burst), float(rate)))


# Token-bucket arithmetic in portable SQL (CASE, not SQLite's min/max or PostgreSQL's LEAST/
# GREATEST), for an upsert whose proposed row carries the caller's clock in `excluded.stamp`.
# A clock behind the stored stamp (another machine's, slightly off) refills nothing rather
# than taking tokens back. _REFILLED takes four parameters: rate, burst, burst, rate.
_LATEST = ("CASE WHEN excluded.stamp > rate_buckets.stamp THEN excluded.stamp "
           "ELSE rate_buckets.stamp END")
_ELAPSED = f"({_LATEST} - rate_buckets.stamp)"
_REFILLED = (f"(CASE WHEN rate_buckets.tokens + {_ELAPSED} * ? > ? THEN ? "
             f"ELSE rate_buckets.tokens + {_ELAPSED} * ? END)")
