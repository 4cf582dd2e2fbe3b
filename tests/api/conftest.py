"""The API test helpers' fixtures (tests/test_api.py), for the tests of this folder."""

from tests.api.test_api import admin_api, enqueued, viewer_api  # noqa: F401 (fixtures)
