"""`python -m cnm_policy` runs the command line."""

import sys

from cnm_policy.cli import main

sys.exit(main())
