"""The core domain: the model registry, the status vocabulary, derivation, transitions and the event log."""
