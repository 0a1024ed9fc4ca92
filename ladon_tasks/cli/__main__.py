"""``python -m ladon_tasks.cli``."""

import sys

from ladon_tasks.cli import main

sys.exit(main())
