"""``python -m vsrflow`` runs the CLI."""

import sys

from vsrflow.cli import main

sys.exit(main())
