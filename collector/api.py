"""The JSON API in the Sumo Logic Collector Management dialect."""

from django.http import JsonResponse

from collector.auth import user_from_request
from collector.models import Source


def status(request):
    user = user_from_request(request)
    if user is None:
        return JsonResponse(
            {"status": 401, "code": "unauthorized", "message": "Unauthorized"}, status=401
        )
    return JsonResponse({"sources": list(Source.objects.values("id", "name", "state"))})
