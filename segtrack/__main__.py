"""`python -m segtrack` runs the command line."""

import sys

from segtrack.cli import main

sys.exit(main())
