"""The api served by functions-framework's test client, with a fresh API key per test."""
from api.apifixtures import api, make_key  # noqa: F401 - fixtures
