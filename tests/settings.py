"""Settings for the test suite: the demo project plus the test apps."""

from bankdemo.settings import *  # noqa: F403
from bankdemo.settings import INSTALLED_APPS, REST_FRAMEWORK

INSTALLED_APPS = [*INSTALLED_APPS, "tests.projectionapp.apps.ProjectionAppConfig"]

# Tests send many requests as one user from one address; the throttle tests set their own rates.
REST_FRAMEWORK = {
    **REST_FRAMEWORK,
    "DEFAULT_THROTTLE_RATES": {"token": "100000/minute", "commands": "100000/minute"},
}
