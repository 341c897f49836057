"""Property: no request body, content type or event shape makes POST /v1/events answer 5xx."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from tests.integration.api_fixtures import bearer, usage_event

pytestmark = pytest.mark.integration

json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20)
json_values = st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=12)
field_values = json_values | st.sampled_from(
    ["api_calls", "active_seats", "", "2025-01-01T00:00:00Z", "2999-01-01T00:00:00Z", "2025-01-01", "-1",
     "1e400", "NaN", "cust-prop", "1.0", "x" * 300])


@st.composite
def mutated_events(draw):
    """A valid event with some fields replaced, removed or added."""
    event = usage_event(draw(st.sampled_from(["cust-prop", "cust-other"])))
    for name in draw(st.lists(st.sampled_from([*event, "extra", "quantity"]), max_size=3)):
        action = draw(st.sampled_from(["set", "drop", "data"]))
        if action == "drop":
            event.pop(name, None)
        elif action == "data":
            event["data"] = {**event["data"], name: draw(field_values)} if isinstance(event.get("data"), dict) \
                else draw(field_values)
        else:
            event[name] = draw(field_values)
    return event


def _dumps(value) -> bytes:
    return json.dumps(value).encode()


bodies = st.one_of(
    st.binary(max_size=200),
    json_values.map(_dumps),
    mutated_events().map(_dumps),
    st.lists(mutated_events() | json_values, min_size=0, max_size=5).map(_dumps),
)
content_types = st.sampled_from(
    ["application/json", "application/cloudevents+json", "application/cloudevents-batch+json",
     "application/json; charset=utf-8", "text/plain", ""])


@pytest.fixture(scope="module")
def tokens(keys) -> list[str]:
    return [keys.create(["cust-prop"])[1], keys.create([], admin=True)[1]]


@hypothesis_settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=bodies, content_type=content_types, which=st.integers(0, 1))
def test_no_input_gives_a_server_error(api, tokens, body, content_type, which):
    response = api.post("/v1/events", content=body,
                        headers={**bearer(tokens[which]), **({"Content-Type": content_type} if content_type else {})})
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["detail"]
    else:
        assert response.status_code == 202
        assert response.json()["accepted"] + response.json()["duplicate"] >= 1
