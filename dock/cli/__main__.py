"""`python -m dock.cli`: the same as the `dock` command."""

from dock.cli.main import main

raise SystemExit(main())
