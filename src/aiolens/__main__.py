"""``python -m aiolens``: the same as the ``aiolens`` command."""

import sys

from aiolens.cli import main

sys.exit(main())
