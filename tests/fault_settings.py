"""Production settings plus one database-reading API endpoint, for the fault tests."""

from meshportal.settings import *  # noqa: F403

ROOT_URLCONF = "tests.fault_urls"
