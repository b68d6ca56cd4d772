"""Sign-in hardening: throttling with a clear lockout page, password rules, session expiry."""

import pytest
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError

from tests import factories


@pytest.fixture
def person(db):
    user = factories.user("olivia")
    user.set_password("a-long-enough-passphrase")
    user.save()
    return user


def _sign_in(client, password, username="olivia"):
    return client.post("/login/", {"username": username, "password": password})


def test_sign_in_works_and_axes_backend_comes_first(client, person, settings):
    assert settings.AUTHENTICATION_BACKENDS[0] == "meshportal.auth.ThrottleBackend"
    response = _sign_in(client, "a-long-enough-passphrase")
    assert response.status_code == 302 and response.url == "/"


def test_repeated_failures_lock_the_account_with_a_clear_message(client, person, settings):
    settings.AXES_FAILURE_LIMIT = 3
    for _ in range(2):
        response = _sign_in(client, "wrong")
        assert response.status_code == 200
        assert "Please enter a correct username and password" in response.text
    response = _sign_in(client, "wrong")
    assert response.status_code == 429
    text = " ".join(response.text.split())
    assert "Too many failed sign-ins" in text
    assert "locked after 3 failed attempts" in text
    assert "Try again in 15 minutes" in text
    # Even the right password is refused while locked.
    response = _sign_in(client, "a-long-enough-passphrase")
    assert response.status_code == 429
    assert "_auth_user_id" not in client.session


def test_lockout_is_per_user_name(client, person, settings):
    settings.AXES_FAILURE_LIMIT = 2
    other = factories.user("milo")
    other.set_password("another-long-passphrase")
    other.save()
    for _ in range(2):
        _sign_in(client, "wrong")
    assert _sign_in(client, "another-long-passphrase", username="milo").status_code == 302


def test_success_resets_the_failure_count(client, person, settings):
    settings.AXES_FAILURE_LIMIT = 3
    _sign_in(client, "wrong")
    _sign_in(client, "wrong")
    assert _sign_in(client, "a-long-enough-passphrase").status_code == 302
    client.logout()
    _sign_in(client, "wrong")
    assert _sign_in(client, "a-long-enough-passphrase").status_code == 302


def test_test_client_logins_are_unaffected(client, person):
    """force_login and login() (no HTTP request) bypass throttling, as intended."""
    assert client.login(username="olivia", password="a-long-enough-passphrase")
    client.force_login(person)
    assert client.get("/").status_code == 200


@pytest.mark.django_db
def test_password_validators_refuse_weak_passwords():
    for weak in ("short", "12345678901", "password123"):
        with pytest.raises(ValidationError):
            validate_password(weak)
    validate_password("correct horse battery staple")


def test_session_expires(client, person, settings):
    response = _sign_in(client, "a-long-enough-passphrase")
    cookie = response.cookies["sessionid"]
    assert int(cookie["max-age"]) == settings.SESSION_COOKIE_AGE == 43200


def test_session_can_end_with_the_browser(client, person, settings):
    settings.SESSION_EXPIRE_AT_BROWSER_CLOSE = True
    response = _sign_in(client, "a-long-enough-passphrase")
    assert response.cookies["sessionid"]["max-age"] == ""
