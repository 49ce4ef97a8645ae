"""`python -m shared.migrations`: the documented name of `python -m shared.storage.migrations`."""

import sys

from shared.storage.migrations import main

if __name__ == "__main__":
    sys.exit(main())
