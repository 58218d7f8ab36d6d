"""The demo bank: the Django project that shows the event store at work."""
