"""Login throttling: django-axes, adapted to the callers that have no HTTP request."""

from axes.backends import AxesStandaloneBackend


class ThrottleBackend(AxesStandaloneBackend):
    """django-axes' backend, first in AUTHENTICATION_BACKENDS.

    Sign-ins over HTTP (the login page, the API) always pass the request and are throttled.
    Callers without a request (management commands, the test client's login()) are not an
    attacker's door; axes would raise for them, so this backend stands aside instead.
    """

    def authenticate(self, request, username=None, password=None, **kwargs):
        if request is None:
            return None
        return super().authenticate(request, username=username, password=password, **kwargs)
