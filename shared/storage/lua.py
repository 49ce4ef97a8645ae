"""Lua scripts, each in a `.lua` file next to the module that runs it, registered with redis-py.

A module loads its script with `load(redis, __file__, "name")`: the file `name.lua` beside it.
redis-py's `AsyncScript` runs `EVALSHA` and, on `NOSCRIPT` (a restarted or flushed Redis),
loads the script and retries: the loading is redis-py's, not ours.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from redis.asyncio import Redis
from redis.commands.core import AsyncScript


def load(redis: Redis, beside: str, name: str) -> AsyncScript:
    """The script `name.lua` in the folder of the module file `beside` (its `__file__`)."""
    return redis.register_script(source(beside, name))


@cache
def source(beside: str, name: str) -> str:
    return (Path(beside).parent / f"{name}.lua").read_text()
