"""The demo settings plus the check test app."""

from bankdemo.settings import *  # noqa: F403
from bankdemo.settings import INSTALLED_APPS

INSTALLED_APPS = [*INSTALLED_APPS, "tests.checkapp.apps.CheckAppConfig"]
