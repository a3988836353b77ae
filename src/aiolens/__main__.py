"""``python -m aiolens`` and the ``aiolens`` console script.

Without the ``cli`` extra, the command prints one line saying how to install
it and exits with status 1.
"""

import sys

from aiolens.errors import MissingExtraError

__all__ = ["run"]


def run() -> int:
    """Run the ``aiolens`` command line; returns its exit status."""
    try:
        from aiolens.cli import main
    except MissingExtraError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 1
    return main()


if __name__ == "__main__":
    sys.exit(run())
