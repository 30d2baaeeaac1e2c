"""Entry point of the `alert-dispatch` function: the runtime decodes, the shared package does the work."""
import functions_framework

from kades.alerts.function import FUNCTION, with_delivery_worker
from kades.runtime import http_function

handle = functions_framework.http(with_delivery_worker(http_function(FUNCTION)))
