"""Entry point of the `sentiment-analysis` function: the runtime decodes, the shared package does the work."""
import functions_framework

from kades.sentiment.function import FUNCTION
from kades.runtime import http_function

handle = functions_framework.http(http_function(FUNCTION))
