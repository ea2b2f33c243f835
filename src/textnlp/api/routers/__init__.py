"""The API's routers, one per subtree of ``/api/v1``."""
