"""``python -m service`` is ``regime-trader``."""

import sys

from regime_trader.service.cli import main

sys.exit(main())
