"""What every API endpoint shares: routing by method, authentication, CSRF, permissions, JSON bodies,
errors in the two Sumo shapes, and ETags.

An endpoint is built with :func:`route`, which runs the same checks in the same order for every
call, so no handler can forget one:

1. the method (405 ``method.unsupported``),
2. authentication: an access key over HTTP Basic, else the UI's session (401 ``unauthorized``),
3. CSRF for session-authenticated unsafe methods, and a same-origin check for key-authenticated
   ones when a browser sent an ``Origin`` (403 ``forbidden``),
4. the Django model permission of the method (403 ``forbidden``),
5. for methods with a body: size (413), presence (400), ``Content-Type`` (415), UTF-8 and
   JSON (400),
6. the handler, whose :class:`ApiError` becomes the route's error shape; anything else becomes a
   500 ``internal.error`` without a stack trace (and is logged with an error id to find it).
"""

import hashlib
import json
import logging
import secrets
import string
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.http import HttpResponse, HttpResponseNotModified, JsonResponse
from django.middleware.csrf import CsrfViewMiddleware
from django.utils.http import parse_header_parameters
from django.views.decorators.csrf import csrf_exempt

from collector.auth import parse_basic, user_from_request

log = logging.getLogger(__name__)

LEGACY = "legacy"  # {"status", "id", "code", "message"}: collectors, sources, status
ERRORS = "errors"  # {"id", "errors": [{"code", "message", "detail"}]}: fields, health events

MAX_BODY_BYTES = 1024 * 1024
# The largest id either database stores; a longer number in a URL can name nothing.
MAX_ID = 2**63 - 1
UNSAFE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
_ID_ALPHABET = string.ascii_uppercase + string.digits


def error_id() -> str:
    """A random id like ``FRXHW-NB12G-HMYO6`` that ties an error answer to the server log."""
    return "-".join("".join(secrets.choice(_ID_ALPHABET) for _ in range(5)) for _ in range(3))


class ApiError(Exception):
    """A refusal with an HTTP status, a machine code and a sentence naming what was wrong."""

    def __init__(self, status: int, code: str, message: str, *, detail: str = "", headers=None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.detail = detail
        self.headers = headers or {}


def not_found(message: str) -> ApiError:
    return ApiError(404, "notfound", message)


def bad_request(message: str, code: str = "invalid.request") -> ApiError:
    return ApiError(400, code, message)


def error_response(exc: ApiError, style: str, eid: str | None = None) -> JsonResponse:
    """``exc`` in the route's error shape, under a fresh error id unless one is given."""
    eid = eid or error_id()
    if style == ERRORS:
        error = {"code": exc.code, "message": exc.message}
        if exc.detail:
            error["detail"] = exc.detail
        body = {"id": eid, "errors": [error]}
    else:
        body = {"status": exc.status, "id": eid, "code": exc.code, "message": exc.message}
    response = JsonResponse(body, status=exc.status)
    for name, value in exc.headers.items():
        response[name] = value
    return response


# --- routing ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Method:
    """One HTTP method of a route: its handler, the permission it needs, whether it reads a body.

    A handler is called as ``handler(request, **url_kwargs)``, or with the parsed JSON object as
    the second argument when ``body`` is set. ``request.user`` is the authenticated user.
    """

    handler: Callable
    permission: str
    body: bool = False


def route(*, style: str = LEGACY, **methods: Method) -> Callable:
    """A view answering the given methods (keyword names are HTTP methods) with all the checks."""
    allowed = ", ".join(sorted(methods))

    @csrf_exempt  # the checks below apply CSRF to session users only; Basic-auth calls are exempt
    def view(request, **kwargs):
        try:
            method = methods.get(request.method)
            if method is None:
                raise ApiError(
                    405,
                    "method.unsupported",
                    f"{request.method} is not supported here; use {allowed}.",
                    headers={"Allow": allowed},
                )
            request.user = authenticate(request)
            check_request_origin(request)
            require_permission(request.user, method.permission)
            if method.body:
                return method.handler(request, read_json(request), **kwargs)
            return method.handler(request, **kwargs)
        except ApiError as exc:
            return error_response(exc, style)
        except RequestDataTooBig:
            return error_response(_too_large(), style)
        except SuspiciousOperation as exc:
            return error_response(bad_request(f"The request was refused: {exc}"), style)
        except Exception:
            eid = error_id()
            # The traceback goes to the log (never the answer); request bodies are not logged, so
            # a client secret cannot end up there.
            log.exception("API error %s on %s %s", eid, request.method, request.path)
            message = f"An internal error occurred; quote {eid} to the administrator."
            return error_response(ApiError(500, "internal.error", message), style, eid)

    view.allowed_methods = allowed
    return view


@csrf_exempt
def unknown_route(request, *args, **kwargs):
    """Any path under the API that no route matches: a JSON 404, never Django's HTML page."""
    return error_response(
        not_found(f"There is no API endpoint at {request.path}; see the README."), LEGACY
    )


# --- authentication, CSRF, permissions --------------------------------------------------------
class _CsrfCheck(CsrfViewMiddleware):
    """Django's CSRF middleware, asked directly; ``_reject`` hands back the reason as a string."""

    def _reject(self, request, reason):
        return reason


def _unsearchable_access_id(request) -> bool:
    # PostgreSQL refuses to even compare text holding NUL, so such an id would fail the lookup
    # with an error instead of simply matching no key.
    credentials = parse_basic(request.META.get("HTTP_AUTHORIZATION", ""))
    return credentials is not None and "\x00" in credentials[0]


def authenticate(request):
    """The user of the request (access key, else session); 401 in the Sumo shape otherwise."""
    user = None if _unsearchable_access_id(request) else user_from_request(request)
    if user is not None:
        return user
    headers = {}
    # A browser that already has a session cookie must not get a Basic challenge: it would pop a
    # password dialog over the UI when a same-origin fetch finds the session expired.
    if settings.SESSION_COOKIE_NAME not in request.COOKIES:
        headers["WWW-Authenticate"] = 'Basic realm="Sumo Sources API", charset="UTF-8"'
    if request.META.get("HTTP_AUTHORIZATION"):
        message = "The access id or access key is wrong, revoked, or its user is inactive."
    else:
        message = "Authenticate with HTTP Basic (access id and access key) or a session."
    raise ApiError(401, "unauthorized", message, headers=headers)


def _authenticated_by_key(request) -> bool:
    return bool(request.META.get("HTTP_AUTHORIZATION"))


def check_request_origin(request) -> None:
    """Refuse cross-site unsafe requests.

    A session user's unsafe call must pass Django's CSRF check (token header and origin). A key
    user's call needs no token (scripts cannot have one), but a browser that once answered a
    Basic prompt replays those credentials on any cross-site request, so one that announces a
    foreign ``Origin`` is refused too. Scripts send no ``Origin`` and are unaffected.
    """
    if request.method not in UNSAFE_METHODS:
        return
    if _authenticated_by_key(request):
        origin = request.META.get("HTTP_ORIGIN")
        if origin is None:
            return
        own = f"{request.scheme}://{request.get_host()}"
        if origin == own or origin in settings.CSRF_TRUSTED_ORIGINS:
            return
        raise ApiError(403, "forbidden", f"Cross-site requests from {origin} are not allowed.")
    check = _CsrfCheck(lambda request: None)
    check.process_request(request)
    reason = check.process_view(request, None, (), {})
    if reason:
        raise ApiError(
            403,
            "forbidden",
            f"CSRF verification failed ({reason}). Send the csrftoken cookie's value in an "
            "X-CSRFToken header, or use an access key.",
        )


def require_permission(user, permission: str) -> None:
    if not user.has_perm(permission):
        action, _, model = permission.partition(".")[2].partition("_")
        raise ApiError(
            403,
            "forbidden",
            f"Your user may not {action} {model} objects (permission {permission} is missing).",
        )


# --- request bodies and parameters ------------------------------------------------------------
def _too_large() -> ApiError:
    return ApiError(
        413, "request.too.large", f"The request body exceeds {MAX_BODY_BYTES} bytes (1 MiB)."
    )


def _reject_constant(name: str):
    raise ValueError(f"{name} is not valid JSON")


def _unique_keys(pairs):
    result = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"the key {key!r} appears twice in one object")
        result[key] = value
    return result


def _check_text(data) -> None:
    """Refuse text the databases cannot store: NUL (PostgreSQL) and lone surrogates (UTF-8).

    Iterative, because the structure may be as deep as the JSON parser allows.
    """
    stack = [data]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, str):
            if "\x00" in item:
                raise bad_request("Text in the body must not contain NUL characters.")
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                raise bad_request("Text in the body contains an unpaired UTF-16 surrogate.")


def read_json(request) -> dict:
    """The request body as a JSON object, or an :class:`ApiError` (413, 415 or 400)."""
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        raise bad_request("The Content-Length header is not a number.")
    if length > MAX_BODY_BYTES:
        raise _too_large()
    if length == 0:
        raise bad_request("The body is empty; send a JSON object.")
    # The type is checked before the body is touched: a multipart body that the CSRF check has
    # already parsed could not be read again.
    media_type, params = parse_header_parameters(request.META.get("CONTENT_TYPE") or "")
    charset = params.get("charset", "utf-8").lower()
    if media_type.lower() != "application/json" or charset not in ("utf-8", "utf8"):
        raise ApiError(
            415,
            "contenttype.invalid",
            "Send the body as UTF-8 JSON with the header Content-Type: application/json.",
        )
    raw = request.body
    if not raw.strip():
        raise bad_request("The body is empty; send a JSON object.")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise bad_request(f"The body is not valid UTF-8 (byte {exc.start}).")
    try:
        data = json.loads(text, object_pairs_hook=_unique_keys, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise bad_request(
            f"The body is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})."
        )
    except ValueError as exc:
        raise bad_request(f"The body is not valid JSON: {exc}.")
    except RecursionError:
        raise bad_request("The body is not valid JSON: it is nested too deeply.")
    if not isinstance(data, dict):
        raise bad_request("The body must be a JSON object.")
    _check_text(data)
    return data


def int_param(request, name: str, *, default: int, minimum: int, maximum: int) -> int:
    """An integer query parameter within bounds; 400 naming the parameter otherwise."""
    raw = request.GET.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        value = None
    if value is None or not minimum <= value <= maximum:
        raise bad_request(f"The parameter {name} must be an integer from {minimum} to {maximum}.")
    return value


def check_id(value: int, what: str) -> int:
    """An id from a URL; one no database can hold names nothing (404, not an overflow)."""
    if value > MAX_ID:
        raise not_found(f"{what} {value} does not exist.")
    return value


def expect_object(value, where: str, code: str = "invalid.request") -> dict:
    if not isinstance(value, dict):
        raise bad_request(f"{where} must be a JSON object.", code)
    return value


def expect_keys(obj: dict, allowed, where: str, code: str = "invalid.request") -> None:
    """Refuse keys outside ``allowed``, naming them, so a typo never passes silently."""
    unknown = sorted(set(obj) - set(allowed))
    if unknown:
        names = ", ".join(f"{where}.{key}" for key in unknown)
        known = ", ".join(sorted(allowed))
        raise bad_request(f"Unknown key {names}; known keys are: {known}.", code)


# --- ETags ------------------------------------------------------------------------------------
def etag_of(config) -> str:
    """A strong ETag of an entity's configuration (never its live state; see the README)."""
    canonical = json.dumps(config, sort_keys=True, separators=(",", ":"), default=str)
    return '"' + hashlib.sha256(canonical.encode()).hexdigest()[:32] + '"'


def _tags(header: str) -> set[str]:
    # Compared without quotes and the weak marker: a proxy may weaken the tag, and some clients
    # strip the quotes; the opaque part is still ours.
    return {tag.strip().removeprefix("W/").strip('"') for tag in header.split(",") if tag.strip()}


def require_if_match(request, current: str, what: str) -> None:
    """A PUT must carry the ETag it read: missing -> 403, stale -> 412."""
    header = request.META.get("HTTP_IF_MATCH", "").strip()
    if not header:
        raise ApiError(
            403,
            "forbidden",
            f"A PUT must send If-Match with the ETag of the {what}; GET it first.",
        )
    if header == "*":
        return
    if current.strip('"') not in _tags(header):
        raise ApiError(
            412,
            "precondition.failed",
            f"The {what} changed since you read it; GET it again, reapply your change and retry.",
        )


def entity_response(request, envelope: str | None, body: dict, etag: str, *, status: int = 200):
    """A single-entity answer with its ETag; 304 when a GET's If-None-Match already has it.

    ``envelope`` names the wrapping member (``{"collector": ...}``); None answers the bare entity
    (the Fields API's style)."""
    if request.method == "GET":
        header = request.META.get("HTTP_IF_NONE_MATCH", "").strip()
        if header and (header == "*" or etag.strip('"') in _tags(header)):
            response = HttpResponseNotModified()
            response["ETag"] = etag
            return response
    response = JsonResponse(body if envelope is None else {envelope: body}, status=status)
    response["ETag"] = etag
    return response


def empty_response(status: int = 200) -> HttpResponse:
    """An answer without a body (deletes and toggles)."""
    return HttpResponse(status=status)


# --- forms ------------------------------------------------------------------------------------
def text_value(obj: dict, key: str, where: str, code: str) -> str:
    """A string member for a form (missing or null -> "", so the form decides if it is required);
    any other type is refused rather than turned into text."""
    value = obj.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise bad_request(f"{where}.{key} must be a string.", code)
    return value


def map_value(obj: dict, key: str, where: str, code: str) -> dict:
    value = obj.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise bad_request(f"{where}.{key} must be a JSON object of field names to values.", code)
    return value


def form_error_codes(form, field: str) -> set[str]:
    return {error.code for error in form.errors.as_data().get(field, [])}


def form_message(form, names: dict[str, str], where: str) -> str:
    """Every error of a bound form as one sentence per error, each naming the JSON key."""
    parts = []
    for field, errors in form.errors.as_data().items():
        label = where if field == "__all__" else f"{where}.{names.get(field, field)}"
        for error in errors:
            parts.extend(f"{label}: {message}" for message in error.messages)
    return " ".join(parts)


def config_value(config: dict, key: str, spec, where: str, code: str):
    """One value of a kind's ``config`` for its form, checked against the JSON type the kind
    declares for it (collector.kinds.base.ConfigKey): strings, string arrays, integers, booleans
    and objects; a 400 naming ``<where>.<key>`` otherwise."""
    from collector.kinds.base import BOOLEAN, INTEGER, OBJECT, TEXT, TEXT_LIST

    if spec.json_type == TEXT:
        return text_value(config, key, where, code)
    value = config.get(key)
    if value is None:
        return [] if spec.json_type == TEXT_LIST else None
    name = f"{where}.{key}"
    if spec.json_type == TEXT_LIST:
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise bad_request(f"{name} must be an array of strings.", code)
    elif spec.json_type == INTEGER and type(value) is not int:
        raise bad_request(f"{name} must be an integer.", code)
    elif spec.json_type == BOOLEAN and not isinstance(value, bool):
        raise bad_request(f"{name} must be true or false.", code)
    elif spec.json_type == OBJECT and not isinstance(value, dict):
        raise bad_request(f"{name} must be an object.", code)
    return value
