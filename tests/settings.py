"""Settings for the test suite: the demo project plus the test apps."""

import base64
import os
import tempfile

from bankdemo.settings import *  # noqa: F403
from bankdemo.settings import DATABASES, EVENTSOURCING, INSTALLED_APPS, REST_FRAMEWORK
from eventsourcing_app.ledger.digests import generate_private_key_pem

INSTALLED_APPS = [*INSTALLED_APPS, "tests.projectionapp.apps.ProjectionAppConfig"]

# Tests send many requests as one user from one address; the throttle tests set their own rates.
REST_FRAMEWORK = {
    **REST_FRAMEWORK,
    "DEFAULT_THROTTLE_RATES": {"token": "100000/minute", "commands": "100000/minute"},
}

# Tests run threads of their own, each with a connection at once: a wider pool than a server's,
# and one that waits out a PostgreSQL restart (the restart trial) rather than failing fast.
if "pool" in DATABASES["default"].get("OPTIONS", {}):
    DATABASES["default"]["OPTIONS"]["pool"].update(max_size=32, timeout=60)

# A signing key of the test run's own, in the environment so that the servers and workers the
# tests start share it; digest files go to a scratch folder.
os.environ.setdefault("LEDGER_SIGNING_KEY", generate_private_key_pem().decode())
# And a master key for personal data of the run's own, shared the same way.
os.environ.setdefault("PERSONAL_DATA_KEY", base64.b64encode(os.urandom(32)).decode())
EVENTSOURCING = {
    **EVENTSOURCING,
    "LEDGER_SIGNING_KEY_FILE": None,
    "PERSONAL_DATA_KEY_FILE": None,
    "LEDGER_DIGEST_DIR": os.environ.setdefault(
        "LEDGER_DIGEST_DIR", tempfile.mkdtemp(prefix="ledger-digests-")
    ),
}
