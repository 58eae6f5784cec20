"""What accounts announces: a two-factor code refused (the audit trail records it)."""

from django.dispatch import Signal

# Sent with request, user and reason ("wrong", "expired", "replayed", "throttled").
two_factor_refused = Signal()
