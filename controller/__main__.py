"""`python -m controller` is `python -m controller.run`."""

import sys

from controller.run import main

sys.exit(main())
