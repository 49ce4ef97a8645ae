"""`python -m app_product.relay`: the documented name of the outbox relay
(`app_product.outbox.relay`)."""

import sys

from app_product.outbox.relay import main

if __name__ == "__main__":
    sys.exit(main())
