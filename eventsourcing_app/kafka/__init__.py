"""The Kafka relay (optional: `pip install django-event-store[kafka]`)."""
