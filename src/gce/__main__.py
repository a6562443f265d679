"""``python -m gce ...``: the book's command line (:mod:`gce.book.cli`)."""

import sys

from gce.book.cli import main

if __name__ == "__main__":
    sys.exit(main())
