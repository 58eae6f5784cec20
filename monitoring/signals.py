"""What the core announces. Downstream apps connect receivers in their AppConfig.ready(); the core imports none of them.

`statuses_changed` is sent once per batch of status transitions, after the transaction that wrote
them commits (never for a batch that rolled back). Its `changes` are the StatusChange rows in
sequence order, each with `.model` (and its provider) loaded. The event log stays the source of
truth: a receiver that misses a batch (a crash, Redis away) is caught up by whoever reads the log.
"""

from django.dispatch import Signal

statuses_changed = Signal()
