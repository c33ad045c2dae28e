"""``python -m smartdownsample``: the command line."""

from .cli import main

raise SystemExit(main())
