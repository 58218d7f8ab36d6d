"""Settings for the test suite: the demo project plus the test apps."""

from bankdemo.settings import *  # noqa: F403
from bankdemo.settings import INSTALLED_APPS

INSTALLED_APPS = [*INSTALLED_APPS, "tests.projectionapp.apps.ProjectionAppConfig"]
