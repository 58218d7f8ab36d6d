"""The Django-free core of the event store: records, the store, the repository, the protocols."""
