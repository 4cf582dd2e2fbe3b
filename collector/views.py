"""HTML pages. Thin: permission check, form, service call, message, redirect."""

from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from collector.models import Collector


@login_required
def collection(request):
    collectors = Collector.objects.prefetch_related("sources")
    return render(request, "collector/collection.html", {"collectors": collectors})
