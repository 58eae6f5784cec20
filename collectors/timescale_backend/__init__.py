"""The database engine of `timescale://` URLs: django-timescaledb's, refusing clearly where TimescaleDB cannot run."""
