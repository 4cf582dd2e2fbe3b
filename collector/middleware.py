"""Project-wide request policy: login everywhere, security headers on every response, and no
copy of an authenticated answer kept by a browser or a proxy."""

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.utils.cache import patch_cache_control


class LoginRequiredMiddleware:
    """Every page needs a session, except the login page, static files and the API (which checks
    access keys or the session itself and answers 401 in the Sumo error shape)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if not request.user.is_authenticated and not request.path.startswith(
            settings.LOGIN_EXEMPT_PREFIXES
        ):
            return redirect_to_login(request.get_full_path())
        return self.get_response(request)


class SecurityHeadersMiddleware:
    """A strict Content-Security-Policy and a Permissions-Policy: nothing loads from elsewhere."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        response.headers.setdefault("Content-Security-Policy", settings.CONTENT_SECURITY_POLICY)
        response.headers.setdefault(
            "Permissions-Policy", "camera=(), microphone=(), geolocation=()"
        )
        return response


class NoStoreMiddleware:
    """``Cache-Control: no-store`` on every answer to a request that carried credentials
    (a session's user or an API ``Authorization`` header), HTML and JSON alike: they hold
    collection data, so neither the browser's cache nor a proxy may keep them.

    Static files never get here (WhiteNoise answers them earlier in the chain). An ETag and the
    API's 304 to ``If-None-Match`` are unaffected: a client may still revalidate what it holds.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        user = getattr(request, "user", None)
        if "HTTP_AUTHORIZATION" in request.META or (user is not None and user.is_authenticated):
            patch_cache_control(response, no_store=True)
        return response
