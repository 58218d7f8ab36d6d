"""Request parsers of the API: JSON that refuses what the standard decoder cannot take."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser


class SafeJSONParser(JSONParser):
    """DRF's JSON parser, with Django's body size limit (DATA_UPLOAD_MAX_MEMORY_SIZE), which
    DRF's stream skips, and a 400 for nesting so deep that Python's decoder gives up (about a
    thousand levels), where DRF's own lets the RecursionError become a 500."""

    def parse(self, stream, media_type=None, parser_context=None):
        request = (parser_context or {}).get("request")
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        if request is not None and limit is not None:
            length = request.META.get("CONTENT_LENGTH") or "0"
            if length.isdigit() and int(length) > limit:
                raise RequestDataTooBig("the request body exceeds DATA_UPLOAD_MAX_MEMORY_SIZE")
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError("JSON parse error - the document is nested too deeply") from None
