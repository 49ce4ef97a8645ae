"""`Idempotency-Key` on writes: a client retrying after a timeout gets the first answer again.

The answer is stored in the service's `idempotency_keys` table in the same transaction as the
write it answers, so a retry finds either that answer or no trace of the write: never a write
without its answer. A retry racing the first attempt blocks on the key's primary key until the
first commits, then replays its answer (or, if the first rolled back, runs itself). The same
key with another request (method, path, query or body) is a 422. Only successful answers are
kept: a refused request changed nothing, so running it again is safe and may now succeed.
Keys expire after `ttl_seconds`; `prune` deletes expired ones.

The write runs inside the key's transaction, so a slow action holds one pooled connection for
its duration; that is the price of the answer and the write committing together.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Awaitable, Callable
from typing import Any, NamedTuple

import msgspec
from databases import Database
from starlette.requests import Request
from starlette.responses import Response

from shared.http.problems import BadRequest, InvalidBody

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
_VALID_KEY = re.compile(r"^[\x21-\x7e]{1,255}\Z")
_encoder = msgspec.json.Encoder()


class Reply(NamedTuple):
    """What a write answers: a status and a body to encode as JSON."""

    status: int
    body: Any


class _Stored(NamedTuple):
    fingerprint: str
    status: int
    body: bytes


async def _find(db: Database, user_id: str, key: str, ttl_seconds: int) -> _Stored | None:
    row = await db.fetch_one(
        "SELECT fingerprint, status, body FROM idempotency_keys"
        " WHERE user_id = :user_id AND key = :key"
        " AND created_at > now() - make_interval(secs => :ttl)",
        {"user_id": user_id, "key": key, "ttl": ttl_seconds},
    )
    return None if row is None else _Stored(row["fingerprint"], row["status"], bytes(row["body"]))


async def _claim(db: Database, user_id: str, key: str, fingerprint: str, ttl_seconds: int) -> bool:
    """Take the key for this transaction (new, or expired); False if a live answer holds it."""
    row = await db.fetch_one(
        "INSERT INTO idempotency_keys (user_id, key, fingerprint, status, body)"
        " VALUES (:user_id, :key, :fingerprint, 0, '')"
        " ON CONFLICT (user_id, key) DO UPDATE"
        " SET fingerprint = EXCLUDED.fingerprint, status = 0, body = '', created_at = now()"
        " WHERE idempotency_keys.created_at <= now() - make_interval(secs => :ttl)"
        " RETURNING 1",
        {"user_id": user_id, "key": key, "fingerprint": fingerprint, "ttl": ttl_seconds},
    )
    return row is not None


async def _save(db: Database, user_id: str, key: str, status: int, body: bytes) -> None:
    await db.execute(
        "UPDATE idempotency_keys SET status = :status, body = :body WHERE user_id = :user_id AND key = :key",
        {"user_id": user_id, "key": key, "status": status, "body": body},
    )


async def prune(db: Database, ttl_seconds: int, batch: int = 1000) -> int:
    """Delete up to `batch` expired keys; the number deleted (call until it is below `batch`)."""
    deleted = await db.fetch_val(
        "WITH gone AS (DELETE FROM idempotency_keys WHERE ctid IN ("
        " SELECT ctid FROM idempotency_keys"
        " WHERE created_at <= now() - make_interval(secs => :ttl) LIMIT :batch) RETURNING 1)"
        " SELECT count(*) FROM gone",
        {"ttl": ttl_seconds, "batch": batch},
    )
    return int(deleted)


def _encode(reply: Reply) -> bytes:
    return b"" if reply.status == 204 else _encoder.encode(reply.body)


def _response(status: int, body: bytes, replayed: bool) -> Response:
    headers = {REPLAYED_HEADER: "true"} if replayed else None
    return Response(body, status_code=status, headers=headers, media_type="application/json")


async def _fingerprint(request: Request) -> str:
    digest = hashlib.sha256(f"{request.method} {request.url.path}?{request.url.query}\n".encode())
    digest.update(await request.body())
    return digest.hexdigest()


def _replay(stored: _Stored, fingerprint: str) -> Response:
    if stored.fingerprint != fingerprint:
        raise InvalidBody(
            f"This {HEADER} was used for a different request; use a new key for a new request.",
        )
    return _response(stored.status, stored.body, replayed=True)


async def idempotent(
    request: Request, db: Database, user_id: str, ttl_seconds: int, action: Callable[[], Awaitable[Reply]]
) -> Response:
    """Run the write `action` once per (user, Idempotency-Key); without a key, just run it."""
    key = request.headers.get(HEADER)
    if key is None:
        reply = await action()
        return _response(reply.status, _encode(reply), replayed=False)
    if not _VALID_KEY.match(key):
        raise BadRequest(f"{HEADER} must be 1 to 255 printable ASCII characters without spaces.")
    fingerprint = await _fingerprint(request)
    # The common retry: answered without taking a lock or calling the action.
    stored = await _find(db, user_id, key, ttl_seconds)
    if stored is not None:
        return _replay(stored, fingerprint)
    async with db.transaction():
        if not await _claim(db, user_id, key, fingerprint, ttl_seconds):
            # The claim lost to a committed, live answer; both statements judge "live" by this
            # transaction's now(), so the answer is found.
            stored = await _find(db, user_id, key, ttl_seconds)
            if stored is None:
                raise RuntimeError(f"idempotency key {key!r} is held by no answer")
            return _replay(stored, fingerprint)
        reply = await action()
        body = _encode(reply)
        await _save(db, user_id, key, reply.status, body)
    return _response(reply.status, body, replayed=False)
