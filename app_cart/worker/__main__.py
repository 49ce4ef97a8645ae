"""`python -m app_cart.worker [--burst]`: the cart's event worker (see app_cart.worker.run)."""

import sys

from app_cart.worker.run import main

if __name__ == "__main__":
    sys.exit(main())
