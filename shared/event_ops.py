"""Operator commands for the catalog event stream: `python -m shared.event_ops` (scripts/events).

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
import sys
from typing import Any

from redis import Redis

from shared.config import Settings, exit_on_settings_error, load_settings
from shared.keys import CART_GROUP, DEAD_CONSUMER, Keys


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class EventOps:
    def __init__(self, redis: Redis, keys: Keys) -> None:
        self.redis = redis
        self.keys = keys
        self.stream = keys.catalog_events()

    def groups(self) -> list[dict[str, str]]:
        return [
            {_text(k): _text(v) for k, v in group.items()} for group in self.redis.xinfo_groups(self.stream)
        ]

    def pending(self) -> dict[str, int]:
        summary: Any = self.redis.xpending(self.stream, CART_GROUP)
        return {_text(c["name"]): int(c["pending"]) for c in summary.get("consumers", [])}

    def dead(self) -> list[dict[str, str]]:
        entries: Any = self.redis.xpending_range(
            self.stream, CART_GROUP, "-", "+", 1000, consumername=DEAD_CONSUMER
        )
        return [self.reason(_text(entry["message_id"])) for entry in entries]

    def reason(self, message_id: str) -> dict[str, str]:
        fields: Any = self.redis.hgetall(self.keys.dead_event(message_id))
        return {"id": message_id, **{_text(k): _text(v) for k, v in fields.items()}}

    def show(self, message_id: str) -> dict[str, Any]:
        entries: Any = self.redis.xrange(self.stream, message_id, message_id)
        entry = {_text(k): _text(v) for k, v in entries[0][1].items()} if entries else None
        dead = self.reason(message_id)
        return {"id": message_id, "entry": entry, "dead": dead if len(dead) > 1 else None}

    def replay(self, message_id: str) -> str:
        """Re-append a dead event (from the copy kept beside the stream); its new stream id."""
        reason = self.reason(message_id)
        if "event" not in reason:
            raise LookupError(f"{message_id} is not a dead event")
        new_id = _text(
            self.redis.xadd(
                self.stream, {"type": reason["type"], "event": reason["event"], "replay_of": message_id}
            )
        )
        self._drop(message_id)
        return new_id

    def discard(self, message_id: str) -> None:
        if len(self.reason(message_id)) == 1:
            raise LookupError(f"{message_id} is not a dead event")
        self._drop(message_id)

    def _drop(self, message_id: str) -> None:
        with self.redis.pipeline(transaction=True) as pipe:
            pipe.xack(self.stream, CART_GROUP, message_id)
            pipe.delete(self.keys.dead_event(message_id))
            pipe.execute()


def main(argv: list[str] | None = None) -> int:
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
    args = parser.parse_args(argv)
    with exit_on_settings_error("events"):
        settings = load_settings(Settings)
    ops = EventOps(Redis.from_url(settings.redis_url), Keys(settings.redis_key_prefix))
    try:
        return _run(ops, args)
    except LookupError as exc:
        print(f"events: {exc}", file=sys.stderr)
        return 1


def _run(ops: EventOps, args: argparse.Namespace) -> int:
    if args.command == "groups":
        for group in ops.groups():
            print("  ".join(f"{k}={v}" for k, v in group.items()))
    elif args.command == "pending":
        for consumer, count in ops.pending().items():
            print(f"{consumer}: {count}")
    elif args.command == "dead":
        for reason in ops.dead():
            summary = f"{reason.get('type', '?')}  deliveries={reason.get('deliveries')}"
            print(f"{reason['id']}  {summary}  {reason.get('error')}")
    elif args.command == "show":
        print(ops.show(args.id))
    elif args.command == "replay":
        ids = [reason["id"] for reason in ops.dead()] if args.all else [args.id]
        if not all(ids):
            print("events: give an id or --all", file=sys.stderr)
            return 2
        for message_id in ids:
            print(f"{message_id} replayed as {ops.replay(message_id)}")
    elif args.command == "discard":
        if not args.yes:
            print(
                f"events: discarding {args.id} drops it without applying it; add --yes to confirm",
                file=sys.stderr,
            )
            return 1
        ops.discard(args.id)
        print(f"{args.id} discarded")
    return 0


if __name__ == "__main__":
    sys.exit(main())
