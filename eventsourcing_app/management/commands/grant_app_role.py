"""Print (or run) the grants of a least-privilege PostgreSQL role for the application."""

from django.core.management.base import BaseCommand, CommandError
from django.db import connections

from eventsourcing_app.backends.privileges import app_role_grants


class Command(BaseCommand):
    help = (
        "Print the SQL that lets ROLE run the application without owning its tables: reads "
        "and writes on every table of the schema, but on the events table only SELECT and "
        "INSERT. Run migrations as the owning role, and the application as ROLE, which can "
        "then neither change events nor disable their triggers. --execute runs the SQL as "
        "the database user of the settings (the tables' owner)."
    )

    def add_arguments(self, parser):
        parser.add_argument("role", help="an existing PostgreSQL role (CREATE ROLE ... LOGIN)")
        parser.add_argument("--execute", action="store_true", help="run the grants now")
        parser.add_argument("--database", default="default", help="database alias")

    def handle(self, *args, role, execute, database, **options):
        connection = connections[database]
        if connection.vendor != "postgresql":
            raise CommandError("roles and grants are PostgreSQL's; SQLite has no users")
        statements = app_role_grants(connection, role)
        if not execute:
            self.stdout.write(";\n".join(statements) + ";")
            return
        with connection.cursor() as cursor:
            for statement in statements:
                cursor.execute(statement)
        self.stdout.write(f"granted {role} what the application needs, and no more")
