"""The function runtime every KADES function runs on."""
from kades.runtime.function import ANY_TYPE, Context, Function, HandlerResult  # noqa: F401
from kades.runtime.endpoint import http_function  # noqa: F401
