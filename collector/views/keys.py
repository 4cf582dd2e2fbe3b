"""API access keys: create (the key is shown once), list, revoke."""

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from collector.auth import create_access_key, revoke_access_key
from collector.models import AccessKey
from collector.views.base import paginate


class AccessKeyForm(forms.Form):
    label = forms.CharField(
        max_length=128, required=False, help_text="What the key is for, e.g. a script's name."
    )


def _page(request, form, created=None, plain_key=""):
    keys = AccessKey.objects.select_related("user").order_by("revoked_at", "-created_at")
    response = render(
        request,
        "collector/access_keys.html",
        {
            "form": form,
            "page": paginate(request, keys),
            "created": created,
            "plain_key": plain_key,
        },
    )
    return response


@permission_required("collector.view_accesskey", raise_exception=True)
def access_keys(request):
    return _page(request, AccessKeyForm())


@never_cache
@permission_required("collector.add_accesskey", raise_exception=True)
@require_POST
def access_key_create(request):
    """A key for the current user; the plain key is in this one response only (never stored)."""
    form = AccessKeyForm(request.POST)
    if not form.is_valid():
        return _page(request, form)
    row, plain = create_access_key(user=request.user, label=form.cleaned_data["label"])
    return _page(request, AccessKeyForm(), created=row, plain_key=plain)


@permission_required("collector.change_accesskey", raise_exception=True)
@require_POST
def access_key_revoke(request, pk):
    row = get_object_or_404(AccessKey, pk=pk)
    if row.revoked_at is None:
        revoke_access_key(access_key=row)
        messages.success(request, f"Access key {row.access_id} revoked.")
    return redirect("collector:access_keys")
