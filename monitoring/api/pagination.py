"""Cursor pagination for the lists that grow (history, incidents, maintenance windows, providers)."""

from rest_framework.pagination import CursorPagination


class NewestFirst(CursorPagination):
    """Stable pages while rows are added: newest first by id, `?cursor=` from `next`/`previous`."""

    ordering = "-id"
    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 1000
