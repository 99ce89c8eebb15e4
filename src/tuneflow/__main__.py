"""``python -m tuneflow``: the ``tuneflow`` command."""

import sys

from tuneflow.cli.main import main

sys.exit(main())
