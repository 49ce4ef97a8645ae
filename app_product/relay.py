"""`python -m app_product.relay`: the documented name of the outbox relay
(`app_product.outbox.relay`, its command line in `app_product.outbox.cli`)."""

import sys

from app_product.outbox.cli import main

if __name__ == "__main__":
    sys.exit(main())
