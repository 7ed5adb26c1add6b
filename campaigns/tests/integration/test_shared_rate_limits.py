"""API rate limits hold across web processes: two gunicorn servers (two workers each) serving
one key in turn answer it exactly its limit between them, and the same for requests with a bad
key from one address. Run on both shared caches: the database (CACHE_URL unset, DEBUG off) and
Redis. With a per-process cache (locmemcache://) each worker counts on its own and the key gets
its limit several times over.
"""

import pytest
import redis
import requests
from django.db import connection

from campaigns import services
from campaigns.tests.factories import UserFactory

from .conftest import BROKER_DB, REDIS_HOST, REDIS_PORT

LIMIT = 10
BAD_KEY_LIMIT = 4
# The database the Redis run empties: the one after the broker's (INTEGRATION_REDIS_DB).
REDIS_CACHE_DB = BROKER_DB + 1


@pytest.fixture(params=["database", "redis"])
def shared_cache(request, stack):
    """CACHE_URL for the web servers: unset (the database cache) or a Redis database, emptied."""
    if request.param == "database":
        stack.env.pop("CACHE_URL", None)
        with connection.cursor() as cursor:
            cursor.execute("DELETE FROM voiceable_cache")  # flushing the test database leaves it
    else:
        redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=REDIS_CACHE_DB).flushdb()
        stack.env["CACHE_URL"] = f"redis://{REDIS_HOST}:{REDIS_PORT}/{REDIS_CACHE_DB}"
    return request.param


def assert_rate_limited(response: requests.Response):
    """429 in the documented error envelope, with Retry-After."""
    assert response.status_code == 429, response.text
    assert response.headers["Content-Type"] == "application/json"
    body = response.json()
    assert body["status"]["code"] == 429
    assert body["error"].startswith("Too many requests"), body["error"]
    assert isinstance(body["errors"], list) and body["errors"]
    assert int(response.headers["Retry-After"]) > 0


def test_two_web_servers_answer_a_key_its_limit_once_between_them(stack, shared_cache):
    limits = {"API_RATE_LIMIT": f"{LIMIT}/min", "API_BAD_KEY_RATE_LIMIT": f"{BAD_KEY_LIMIT}/min"}
    other_url = stack.free_url()
    stack.web(**limits)
    stack.web("web-b", other_url, **limits)
    servers = [stack.url, other_url]
    key = services.api_key_create(user=UserFactory(username="limited")).raw_key

    with requests.Session() as session:
        answers = [
            session.get(f"{servers[n % 2]}/api/v1/campaigns", headers={"X-API-Key": key}, timeout=10)
            for n in range(2 * LIMIT)
        ]
        bad_key = [
            session.get(f"{servers[n % 2]}/api/v1/campaigns", headers={"X-API-Key": "vk_wrong"}, timeout=10)
            for n in range(2 * BAD_KEY_LIMIT)
        ]

    statuses = [answer.status_code for answer in answers]
    assert statuses == [200] * LIMIT + [429] * LIMIT, statuses
    # One count between the servers: each answer knows of every request before it.
    remaining = [answer.headers["X-RateLimit-Remaining"] for answer in answers[:LIMIT]]
    assert remaining == [str(LIMIT - n) for n in range(1, LIMIT + 1)]
    assert {answer.headers["X-RateLimit-Limit"] for answer in answers} == {str(LIMIT)}
    for answer in answers[LIMIT:]:
        assert_rate_limited(answer)
        assert answer.headers["X-RateLimit-Remaining"] == "0"

    assert [answer.status_code for answer in bad_key] == [401] * BAD_KEY_LIMIT + [429] * BAD_KEY_LIMIT
    for answer in bad_key[BAD_KEY_LIMIT:]:
        assert_rate_limited(answer)
