#!/usr/bin/env python
"""Django's command-line utility for the demo project."""

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bankdemo.settings")
    from django.core.exceptions import ImproperlyConfigured
    from django.core.management import execute_from_command_line

    try:
        execute_from_command_line(sys.argv)
    except ImproperlyConfigured as exc:
        if "--traceback" in sys.argv:
            raise
        # A missing or wrong setting is the operator's to fix: one clear line, as CommandError.
        sys.exit(f"ImproperlyConfigured: {exc}")


if __name__ == "__main__":
    main()
