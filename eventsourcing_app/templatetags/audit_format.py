"""Template filters of the audit pages, the forms they share: `{{ event.created_at|utc }}`,
`{{ event.data|pretty_json }}`, `{{ value|value_text }}` and `{{ event.metadata|who }}`."""

from django import template

from eventsourcing_app.audit import display, timelines

register = template.Library()
register.filter("utc", display.utc)
register.filter("pretty_json", display.pretty_json)
register.filter("value_text", display.value_text)
register.filter("who", timelines.who)
