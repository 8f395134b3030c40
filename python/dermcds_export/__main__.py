"""`python -m dermcds_export <subcommand>`: see cli.py."""

import sys

from .cli import main

sys.exit(main())
