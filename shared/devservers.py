"""`python -m shared.devservers`: the documented name of `python -m devtools.devservers` (works
from a checkout, where `devtools` is importable; it is not installed with the services)."""

import sys

from devtools.devservers import main

if __name__ == "__main__":
    sys.exit(main())
