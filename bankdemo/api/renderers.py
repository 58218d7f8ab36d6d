"""The browsable API: DRF's, made safe for the views of this API that are not model-backed.

DRF's renderer builds a filter form for any list-like answer by calling `view.get_queryset()`
first, which views without a `queryset` (an account's events, built per request) do not have:
an AssertionError, a 500 for anyone opening the URL in a browser. A view without filter
backends has no filter form to build, so none is asked of it.
"""

from rest_framework.renderers import BrowsableAPIRenderer


class SafeBrowsableAPIRenderer(BrowsableAPIRenderer):
    def get_filter_form(self, data, view, request):
        if not getattr(view, "filter_backends", None):
            return None
        return super().get_filter_form(data, view, request)
