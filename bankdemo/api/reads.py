"""Read endpoints (placeholder until the read API lands)."""

from rest_framework.views import APIView


class AccountList(APIView):
    pass


class AccountDetail(APIView):
    pass


class AccountEvents(APIView):
    pass


class AccountState(APIView):
    pass


class TransferDetail(APIView):
    pass


class EventList(APIView):
    pass


class ProjectionList(APIView):
    pass
