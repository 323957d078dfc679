"""``python -m facenb.cli`` is the ``facenb`` command."""
import sys

from facenb.cli import main

sys.exit(main())
