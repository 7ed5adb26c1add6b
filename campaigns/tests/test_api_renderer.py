"""The API writes its JSON with orjson, and the bytes are the ones DRF's own renderer writes."""

import dataclasses
import datetime as dt
import decimal
import uuid
from collections import OrderedDict

import pytest
from django.utils.translation import gettext_lazy
from rest_framework.exceptions import ErrorDetail
from rest_framework.renderers import JSONRenderer

from campaigns.api.renderers import ApiJSONRenderer
from campaigns.models import Campaign

PAYLOADS = [
    {"status": {"code": 200, "message": "Success"}, "data": [{"id": 1, "name": "Rappel \u2013 été ✓"}]},
    {"when": dt.datetime(2026, 11, 30, 15, 4, 5, 123456, tzinfo=dt.UTC), "day": dt.date(2026, 11, 30)},
    {"naive": dt.datetime(2026, 1, 2, 3, 4, 5), "at": dt.time(9, 30), "for": dt.timedelta(minutes=90)},
    {"amount": decimal.Decimal("12.50"), "id": uuid.UUID("12345678-1234-5678-1234-567812345678")},
    {"lazy": gettext_lazy("Campaign not found"), "detail": ErrorDetail("Invalid", code="invalid")},
    {"status": Campaign.Status.SCHEDULED, "nested": OrderedDict(b=[1, 2.5, None, True], a=())},
    {"separators": "line\u2028paragraph\u2029end", "quote": 'say "hi"\n\t\\'},
    {"big": 2**70, "small": -(2**63)},  # past 64 bits: orjson refuses, DRF's renderer writes it
    {1: "integer key", "x": {2: "nested"}},  # keys that are not strings: the same
    [],
    "plain",
]


@pytest.mark.parametrize("payload", PAYLOADS, ids=range(len(PAYLOADS)))
def test_the_bytes_are_what_drf_writes(payload):
    assert ApiJSONRenderer().render(payload) == JSONRenderer().render(payload)


def test_pretty_printing_on_request_is_drfs():
    payload = {"a": [1, {"b": None}]}
    media_type = "application/json; indent=2"
    assert ApiJSONRenderer().render(payload, media_type) == JSONRenderer().render(payload, media_type)
    assert b"\n  " in ApiJSONRenderer().render(payload, media_type)


def test_what_drf_cannot_write_fails_as_in_drf():
    @dataclasses.dataclass
    class Point:
        x: int

    for payload in ({"point": Point(1)}, {"file": open}):
        with pytest.raises(TypeError):
            JSONRenderer().render(payload)
        with pytest.raises(TypeError):
            ApiJSONRenderer().render(payload)
    assert ApiJSONRenderer().render({"set": {1}}) == JSONRenderer().render({"set": {1}}) == b'{"set":[1]}'


def test_a_float_json_has_no_word_for_is_written_null_where_drf_fails():
    with pytest.raises(ValueError):
        JSONRenderer().render({"rate": float("nan")})
    assert ApiJSONRenderer().render({"rate": float("nan"), "top": float("inf")}) == b'{"rate":null,"top":null}'


def test_an_answer_is_rendered_by_it(api):
    answer = api.get("/api/v1/campaigns")
    assert answer.status_code == 200
    assert type(answer.accepted_renderer) is ApiJSONRenderer
