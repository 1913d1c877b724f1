"""``python -m nbreplica``: the ``nbreplica`` command."""

from nbreplica.cli import main

raise SystemExit(main())
