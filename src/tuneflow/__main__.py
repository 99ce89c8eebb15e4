import sys

from tuneflow.cli.main import main

sys.exit(main())
