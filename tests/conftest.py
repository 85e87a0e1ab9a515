"""Shared test configuration: hypothesis profiles.

``ci`` (the default) is derandomized with a bounded example count, so every CI run checks the
same inputs; ``thorough`` is for long local runs: ``HYPOTHESIS_PROFILE=thorough pytest``.
"""

import os
from collections.abc import Iterator

import pytest
from aws_server import AwsServer, running_server
from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    derandomize=True,
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    print_blob=True,
)
settings.register_profile("thorough", max_examples=5000, deadline=None, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture
def aws_server() -> Iterator[AwsServer]:
    """A loopback API Gateway stand-in that verifies signatures with botocore."""
    with running_server() as server:
        yield server
