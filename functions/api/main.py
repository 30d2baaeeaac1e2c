"""Entry point of the `api` function: the REST API of KADES under /v1."""
import functions_framework

from kades.api.app import api_entry_point

handle = functions_framework.http(api_entry_point())
