"""``python -m memorax.cli`` is the ``memorax`` command."""

import sys

from memorax.cli.main import main

sys.exit(main())
