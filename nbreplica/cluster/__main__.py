"""``python -m nbreplica.cluster JOB``: run one worker (see :mod:`nbreplica.cluster.worker`)."""

import sys

from nbreplica.cluster.worker import main

sys.exit(main())
