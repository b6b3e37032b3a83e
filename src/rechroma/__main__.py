"""`python -m rechroma` runs the command line."""

import sys

from rechroma.cli import main

sys.exit(main())
