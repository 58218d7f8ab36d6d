"""Settings of the processes the fault trials kill: the demo project's, with a short lease."""

from bankdemo.settings import *  # noqa: F403
from bankdemo.settings import EVENTSOURCING

# A SIGKILLed worker or relay cannot release its leases: its successor takes them over when they
# lapse. 1 s instead of the default 30 keeps many restarts quick. One process runs at a time in
# the trials; a live worker renews its leases at every batch and poll (--poll-interval 0.3).
EVENTSOURCING = {**EVENTSOURCING, "LEASE_SECONDS": 1}
