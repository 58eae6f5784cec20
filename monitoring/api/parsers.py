"""The API's JSON parser: a body too large or nested too deeply is refused with a message naming the limit."""

from __future__ import annotations

import codecs
import json
from typing import Any

from django.conf import settings
from rest_framework import status
from rest_framework.exceptions import APIException, ParseError
from rest_framework.parsers import JSONParser

from monitoring.json_limits import JSONLimitError, check_limits


class BodyTooLarge(APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "JSON body too large."
    default_code = "too_large"


class LimitedJSONParser(JSONParser):
    """DRF's JSON parser, reading at most JSON_MAX_BYTES and refusing more than JSON_MAX_DEPTH levels of nesting."""

    def parse(self, stream, media_type=None, parser_context=None) -> Any:
        parser_context = parser_context or {}
        encoding = parser_context.get("encoding", settings.DEFAULT_CHARSET)
        limit = settings.JSON_MAX_BYTES
        raw = stream.read(limit + 1) if stream is not None else b""
        if len(raw) > limit:
            raise BodyTooLarge(f"JSON body too large: more than {limit} bytes.")
        try:
            text = codecs.decode(raw, encoding)
        except (UnicodeDecodeError, LookupError) as exc:
            raise ParseError(f"JSON parse error - {exc}") from None
        try:
            check_limits(text, max_bytes=limit)
        except JSONLimitError as exc:
            raise ParseError(str(exc)) from None
        try:
            return json.loads(text, parse_constant=self._refuse_constant if self.strict else None)
        except ValueError as exc:
            raise ParseError(f"JSON parse error - {exc}") from None

    @staticmethod
    def _refuse_constant(name: str) -> None:
        raise ValueError(f"{name} is not valid JSON")
