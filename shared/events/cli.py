"""Operator commands for the catalog event stream: `python -m shared.events.cli` (scripts/events).

    groups                       consumer groups: consumers, pending, lag, last delivered
    pending                      pending events by consumer
    dead                         dead (parked) events with their reasons
    show ID                      one event: its stream entry and, if dead, why
    replay ID | --all            re-append dead events to the stream (a live worker applies
                                 them; handlers ignore what was already applied), then drop
                                 them from the dead list
    discard ID --yes             drop one dead event without applying it

With STREAM_PARTITIONS above 1, `groups`, `pending` and `dead` go over every partition (each
line says which) and an ID is looked for in each (`--partition N` names one). The same
operations as raw redis-cli commands are in the README.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from shared.config import Settings, exit_on_settings_error, load_settings
from shared.events.dead_letters import DeadLetters
from shared.events.status import StreamStatus
from shared.keys import CART_GROUP, keys_for
from shared.storage.redis_conn import create_redis


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="scripts/events", description="Inspect and repair the catalog event stream."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    for name in ("groups", "pending", "dead"):
        commands.add_parser(name)
    show = commands.add_parser("show")
    show.add_argument("id")
    replay = commands.add_parser("replay")
    replay.add_argument("id", nargs="?")
    replay.add_argument("--all", action="store_true")
    discard = commands.add_parser("discard")
    discard.add_argument("id")
    discard.add_argument("--yes", action="store_true", help="confirm: the event is dropped, not applied")
    for command in (show, replay, discard):
        command.add_argument("--partition", type=int, help="the partition of the stream that holds ID")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    with exit_on_settings_error("events"):
        settings = load_settings(Settings)
    return asyncio.run(_main(settings, args))


Partitions = list[tuple[StreamStatus, DeadLetters]]  # each partition's status and dead letters


async def _main(settings: Settings, args: argparse.Namespace) -> int:
    redis = create_redis(settings)
    keys = keys_for(settings)
    partitions = [
        (StreamStatus(redis, keys, CART_GROUP, i), DeadLetters(redis, keys, CART_GROUP, i))
        for i in range(keys.partitions)
    ]
    try:
        return await _run(partitions, args)
    except LookupError as exc:
        print(f"events: {exc}", file=sys.stderr)
        return 1
    finally:
        await redis.aclose()


async def _run(partitions: Partitions, args: argparse.Namespace) -> int:
    many = len(partitions) > 1
    if args.command in ("groups", "pending", "dead"):
        for status, dead in partitions:
            where = f"partition={status.partition}  " if many else ""
            for line in await _listing(status, dead, args.command):
                print(where + line)
        return 0
    if args.command == "replay" and args.all:
        for _, dead in partitions:
            for message_id in await dead.ids():
                print(f"{message_id} replayed as {await dead.replay(message_id)}")
        return 0
    if not args.id:
        print("events: give an id or --all", file=sys.stderr)
        return 2
    if args.command == "discard" and not args.yes:
        print(
            f"events: discarding {args.id} drops it without applying it; add --yes to confirm",
            file=sys.stderr,
        )
        return 1
    dead = await _holder(partitions, args.id, args.partition)
    if args.command == "show":
        print(await dead.show(args.id))
    elif args.command == "replay":
        print(f"{args.id} replayed as {await dead.replay(args.id)}")
    else:
        await dead.discard(args.id)
        print(f"{args.id} discarded")
    return 0


async def _listing(status: StreamStatus, dead: DeadLetters, command: str) -> list[str]:
    if command == "groups":
        return ["  ".join(f"{k}={v}" for k, v in group.items()) for group in await status.groups()]
    if command == "pending":
        return [f"{consumer}: {count}" for consumer, count in (await status.pending_by_consumer()).items()]
    return [
        f"{r['id']}  {r.get('type', '?')}  deliveries={r.get('deliveries')}  {r.get('error')}"
        for r in await dead.list()
    ]


async def _holder(
    partitions: list[tuple[StreamStatus, DeadLetters]], message_id: str, named: int | None
) -> DeadLetters:
    """The partition an id is in: the one named, else the one whose dead record or stream entry
    it is (ids are per stream: the first that has it), else the first."""
    if named is not None:
        if not 0 <= named < len(partitions):
            raise LookupError(f"there is no partition {named} (STREAM_PARTITIONS is {len(partitions)})")
        return partitions[named][1]
    for _, dead in partitions:
        shown = await dead.show(message_id)
        if shown["dead"] or shown["entry"]:
            return dead
    return partitions[0][1]


if __name__ == "__main__":
    sys.exit(main())
