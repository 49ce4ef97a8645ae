"""Lua scripts from `shared/lua/*.lua`, registered with redis-py.

redis-py's `AsyncScript` runs `EVALSHA` and, on `NOSCRIPT` (a restarted or flushed Redis),
loads the script and retries: the loading is redis-py's, not ours.
"""

from __future__ import annotations

from functools import cache
from importlib.resources import files

from redis.asyncio import Redis
from redis.commands.core import AsyncScript


def load(redis: Redis, name: str) -> AsyncScript:
    return redis.register_script(_source(name))


@cache
def _source(name: str) -> str:
    return files("shared").joinpath("lua", f"{name}.lua").read_text()
