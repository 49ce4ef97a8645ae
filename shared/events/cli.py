"""Operator commands for the catalog event stream: `python -m shared.events.cli` (scripts/events).

    groups                       consumer groups: consumers, pending, lag, last delivered
    pending                      pending events by consumer
    dead                         dead (parked) events with their reasons
    show ID                      one event: its stream entry and, if dead, why
    replay ID | --all            re-append dead events to the stream (a live worker applies
                                 them; handlers ignore what was already applied), then drop
                                 them from the dead list
    discard ID --yes             drop one dead event without applying it

The same operations as raw redis-cli commands are in the README.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from redis.asyncio import Redis

from shared.config import Settings, exit_on_settings_error, load_settings
from shared.events.dead_letters import DeadLetters
from shared.events.status import StreamStatus
from shared.keys import CART_GROUP, keys_for


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="scripts/events", description="Inspect and repair the catalog event stream."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    for name in ("groups", "pending", "dead"):
        commands.add_parser(name)
    commands.add_parser("show").add_argument("id")
    replay = commands.add_parser("replay")
    replay.add_argument("id", nargs="?")
    replay.add_argument("--all", action="store_true")
    discard = commands.add_parser("discard")
    discard.add_argument("id")
    discard.add_argument("--yes", action="store_true", help="confirm: the event is dropped, not applied")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    with exit_on_settings_error("events"):
        settings = load_settings(Settings)
    return asyncio.run(_main(settings, args))


async def _main(settings: Settings, args: argparse.Namespace) -> int:
    redis = Redis.from_url(settings.redis_url)
    keys = keys_for(settings)
    try:
        return await _run(StreamStatus(redis, keys, CART_GROUP), DeadLetters(redis, keys, CART_GROUP), args)
    except LookupError as exc:
        print(f"events: {exc}", file=sys.stderr)
        return 1
    finally:
        await redis.aclose()


async def _run(status: StreamStatus, dead: DeadLetters, args: argparse.Namespace) -> int:
    if args.command == "groups":
        for group in await status.groups():
            print("  ".join(f"{k}={v}" for k, v in group.items()))
    elif args.command == "pending":
        for consumer, count in (await status.pending_by_consumer()).items():
            print(f"{consumer}: {count}")
    elif args.command == "dead":
        for record in await dead.list():
            summary = f"{record.get('type', '?')}  deliveries={record.get('deliveries')}"
            print(f"{record['id']}  {summary}  {record.get('error')}")
    elif args.command == "show":
        print(await dead.show(args.id))
    elif args.command == "replay":
        ids = await dead.ids() if args.all else [args.id]
        if not all(ids):
            print("events: give an id or --all", file=sys.stderr)
            return 2
        for message_id in ids:
            print(f"{message_id} replayed as {await dead.replay(message_id)}")
    elif args.command == "discard":
        if not args.yes:
            print(
                f"events: discarding {args.id} drops it without applying it; add --yes to confirm",
                file=sys.stderr,
            )
            return 1
        await dead.discard(args.id)
        print(f"{args.id} discarded")
    return 0


if __name__ == "__main__":
    sys.exit(main())
