"""Running one script over keys that a Redis Cluster spreads over several slots.

A script may only touch keys of one slot on a cluster. Callers that decide many things in one
call (the limiter's batch, the cache's write of a cart's products) cut their work into groups
whose keys share a hash tag (`shared.keys`), one script call each; `run_grouped` sends the calls
in one pipeline, which redis-py's cluster client splits into one request per master, sent in
parallel: about one round trip, as the single call it replaces. On a single Redis the callers
make one group, and that is one call, as before.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Sequence
from typing import Any, TypeVar

from redis.asyncio import Redis
from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError

T = TypeVar("T")
K = TypeVar("K", bound=Hashable)

Call = tuple[Sequence[str], Sequence[Any]]  # a script call's keys and args


def grouped(items: Iterable[T], group_of: Callable[[T], K]) -> dict[K, list[T]]:
    """`items` by group, each group in the items' order, groups in order of first appearance."""
    groups: dict[K, list[T]] = {}
    for item in items:
        groups.setdefault(group_of(item), []).append(item)
    return groups


async def run_grouped(redis: Redis, script: AsyncScript, calls: Sequence[Call]) -> list[Any]:
    """The replies of `script` called once per (keys, args) in `calls`, in order. One call goes
    out as it is; several in one pipeline. Raises the first call's error if any failed."""
    if len(calls) == 1:
        keys, args = calls[0]
        return [await script(keys=keys, args=args)]
    replies = await _pipelined(redis, script, calls)
    unloaded = [i for i, reply in enumerate(replies) if isinstance(reply, NoScriptError)]
    if unloaded:
        # A master that had not seen the script (new, restarted, or promoted): load it on every
        # master (SCRIPT LOAD goes to all of them on a cluster) and send again only the calls it
        # refused: they ran nothing, and the others must not run twice (a limiter's decision
        # would count a request twice).
        await redis.script_load(script.script)
        again = await _pipelined(redis, script, [calls[i] for i in unloaded])
        for i, reply in zip(unloaded, again, strict=True):
            replies[i] = reply
    for reply in replies:
        if isinstance(reply, Exception):
            raise reply
    return replies


async def _pipelined(redis: Redis, script: AsyncScript, calls: Sequence[Call]) -> list[Any]:
    async with redis.pipeline(transaction=False) as pipe:
        for keys, args in calls:
            # By name: redis-py's cluster pipeline blocks its `evalsha` method (scripts may span
            # slots), not the command, which it routes by the first key like any other.
            pipe.execute_command("EVALSHA", script.sha, len(keys), *keys, *args)
        return list(await pipe.execute(raise_on_error=False))
