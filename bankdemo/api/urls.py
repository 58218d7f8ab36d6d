"""URLs of the bank API, under /api/."""

from csp.constants import UNSAFE_INLINE
from csp.decorators import csp_update
from django.urls import path
from django.utils.decorators import method_decorator
from drf_spectacular.utils import extend_schema
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework import serializers
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.settings import api_settings

from bankdemo.api import commands, ledger, reads, schema
from bankdemo.api.throttles import TokenThrottle


class CredentialsIn(serializers.Serializer):
    """What DRF's AuthTokenSerializer takes (it validates): the blanks and NULs it refuses."""

    username = commands.PatternField(schema.TEXT, help_text="surrounding spaces are dropped")
    password = commands.PatternField(r"^[^\x00]+$")


class TokenOut(serializers.Serializer):
    token = serializers.CharField(help_text="send it as `Authorization: Token <token>`")


class TokenView(ObtainAuthToken):
    """POST username and password, get `{"token": ...}` for `Authorization: Token <key>`."""

    permission_classes = ()
    throttle_classes = [TokenThrottle]
    parser_classes = api_settings.DEFAULT_PARSER_CLASSES  # DRF's view names its own parsers

    @extend_schema(
        request=CredentialsIn,
        responses={
            200: TokenOut,
            **schema.errors(
                415,
                429,
                described={
                    400: "wrong credentials (`fields.non_field_errors`), or a field missing",
                    403: "a session without its CSRF token",
                },
            ),
        },
        auth=[],
        summary="Get the API token of a user",
    )
    def post(self, request, *args, **kwargs):
        return super().post(request, *args, **kwargs)


class Accounts(reads.AccountList):
    """GET lists accounts (from the read model); POST opens one."""

    throttle_classes = commands.OpenAccount.throttle_classes
    post = commands.OpenAccount.post


@method_decorator(csp_update({"style-src": [UNSAFE_INLINE]}), name="dispatch")
class ApiDocs(SpectacularSwaggerSplitView):
    """Swagger UI with its set-up script served as a file (no inline script). Swagger UI sets
    inline styles as it renders, so this page alone allows them (never inline scripts)."""


urlpatterns = [
    path("auth/token/", TokenView.as_view(), name="api-token"),
    path("accounts/", Accounts.as_view(), name="account-list"),
    path("accounts/<str:account_id>/", reads.AccountDetail.as_view(), name="account-detail"),
    path("accounts/<str:account_id>/deposit/", commands.Deposit.as_view(), name="account-deposit"),
    path(
        "accounts/<str:account_id>/withdraw/", commands.Withdraw.as_view(), name="account-withdraw"
    ),
    path("accounts/<str:account_id>/close/", commands.Close.as_view(), name="account-close"),
    path("accounts/<str:account_id>/events/", reads.AccountEvents.as_view(), name="account-events"),
    path("accounts/<str:account_id>/state/", reads.AccountState.as_view(), name="account-state"),
    path("transfers/", commands.RequestTransfer.as_view(), name="transfer-request"),
    path("transfers/<str:transfer_id>/", reads.TransferDetail.as_view(), name="transfer-detail"),
    path("events/", reads.EventList.as_view(), name="event-list"),
    path("projections/", reads.ProjectionList.as_view(), name="projection-list"),
    path("ledger/digest/", ledger.LedgerDigest.as_view(), name="ledger-digest"),
    path("ledger/key/", ledger.LedgerKey.as_view(), name="ledger-key"),
    path("ledger/inclusion/", ledger.LedgerInclusion.as_view(), name="ledger-inclusion"),
    path("ledger/consistency/", ledger.LedgerConsistency.as_view(), name="ledger-consistency"),
    path("schema/", SpectacularAPIView.as_view(permission_classes=()), name="api-schema"),
    path(
        "docs/",
        ApiDocs.as_view(url_name="api-schema", permission_classes=()),
        name="api-docs",
    ),
]
