"""DRF's token check, remembered per process for as long as PostgreSQL says no token, user or permission changed.

A token request otherwise costs a query for the token and its user, and the permission checks one
more for the user's groups. The remembered user, with its permissions loaded, is used again only
while registry_changes counts no notice since it was read: deleting a token, deactivating a user or
changing their groups takes effect on the next request, as before.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

from rest_framework.authentication import TokenAuthentication

from monitoring.api.registry_changes import changes

MAX_KNOWN = 1000


@dataclass(slots=True)
class Known:
    read_at: int
    user: object
    token: object


_known: dict[str, Known] = {}


class RememberedTokenAuthentication(TokenAuthentication):
    def authenticate_credentials(self, key: str):
        known = _known.get(key)
        if known is not None and changes.current(known.read_at):
            # A copy per request: a view or middleware may set attributes on request.user.
            return copy.copy(known.user), known.token
        read_at = changes.mark()
        user, token = super().authenticate_credentials(key)
        if read_at is not None:
            user.get_all_permissions()  # loads the permission caches the API's checks read
            if len(_known) >= MAX_KNOWN:
                _known.clear()
            _known[key] = Known(read_at, user, token)
        return user, token
