"""Entry point of the `whale-detection` function: the runtime decodes, the shared package does the work."""
import functions_framework

from kades.whales.function import FUNCTION
from kades.runtime import http_function

handle = functions_framework.http(http_function(FUNCTION))
