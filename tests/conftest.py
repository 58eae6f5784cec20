"""The cast shared by the suite: a provider, models, a staff user with a token."""

import pytest
from django.contrib.auth import get_user_model
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from monitoring.models import AIModel, Provider


@pytest.fixture
def provider(db):
    return Provider.objects.create(name="OpenAI", slug="openai")


@pytest.fixture
def model(provider):
    return AIModel.objects.create(provider=provider, name="GPT-4o", slug="gpt-4o", endpoint="http://127.0.0.1:8900/v1")


@pytest.fixture
def staff(db):
    return get_user_model().objects.create_user("alice", "alice@example.com", "pw-alice-123", is_staff=True)


@pytest.fixture
def staff_api(staff):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=staff).key}")
    return client


@pytest.fixture
def anon_api():
    return APIClient()
