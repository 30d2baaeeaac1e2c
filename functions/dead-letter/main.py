"""Entry point of the `dead-letter` function: the Broker's deadLetterSink.

It keeps every event it is sent (with Knative's `knativeerror*` extensions) in the Redis
stream `kades:{broker}:dlq`, where `kades dlq list` shows them and `kades dlq replay` sends them back;
a request it cannot decode, or whose body is over the size limit (truncated), is kept as an
unreadable entry, listed but never replayed (kades.deadletter.function).
"""
import functions_framework

from kades.deadletter.function import FUNCTION
from kades.runtime import http_function

handle = functions_framework.http(http_function(FUNCTION))
