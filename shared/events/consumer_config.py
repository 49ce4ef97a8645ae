"""How a stream consumer reads, retries and parks (`shared.events.consumer`)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ConsumerConfig:
    batch_size: int = 100
    block_seconds: float = 2.0
    # A failed event is retried once idle for base * 2^(deliveries - 1) seconds, and parked as
    # dead after max_deliveries deliveries.
    retry_base_seconds: float = 1.0
    max_deliveries: int = 5
    heartbeat_seconds: int = 30
    race_retries: int = 3  # a batch that lost a race is tried this many more times at once

    def __post_init__(self) -> None:
        # Below 0, `_apply_batch` would never call `apply`, and its events would be acknowledged
        # unapplied.
        if self.race_retries < 0:
            raise ValueError(f"race_retries must be 0 or more, not {self.race_retries}")
