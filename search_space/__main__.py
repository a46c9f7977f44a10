"""Entry point of `python -m search_space`."""

from search_space.cli import main

raise SystemExit(main())
