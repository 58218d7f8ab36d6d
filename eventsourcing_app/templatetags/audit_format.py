"""Template filters of the audit pages: `{{ event.created_at|utc }}` and
`{{ event.data|pretty_json }}`, the forms `eventsourcing_app.audit.display` gives the admins."""

from django import template

from eventsourcing_app.audit import display

register = template.Library()
register.filter("utc", display.utc)
register.filter("pretty_json", display.pretty_json)
