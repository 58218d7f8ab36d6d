"""Storage backends on Django's databases: one recorder per database, snapshots beside them."""
