"""``python -m sophos_simulator``: run the Sophos Central simulator until interrupted."""

import sys

from sophos_simulator.cli import main

sys.exit(main())
