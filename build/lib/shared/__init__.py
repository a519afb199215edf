"""Code shared by every Linli service: runtime set-up, config, database, messaging, metrics."""
