"""The cart's part of consuming catalog events: its handlers, wired into the generic consumer
(`shared.events.consumer`). `python -m app_cart.worker` runs it."""
