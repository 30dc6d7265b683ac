"""``python -m service`` is ``regime-trader``."""

import sys

from service.cli import main

sys.exit(main())
