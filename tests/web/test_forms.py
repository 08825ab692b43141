"""Forms from JSON Schemas, and answers from submitted forms."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from plait._pause import validate_answer
from plait.web._forms import FormError, answer_from, field_of_error, form_for

from .conftest import ORDER_SCHEMA


def test_each_kind_of_schema_gets_its_input() -> None:
    form = form_for(ORDER_SCHEMA)
    assert form.kind == "object" and form.title == "Order"
    kinds = {f.name: f.kind for f in form.walk()}
    assert kinds == {
        "answer": "object",
        "answer.approved": "boolean",
        "answer.size": "choice",
        "answer.count": "integer",
        "answer.address": "object",
        "answer.address.city": "string",
        "answer.address.zip": "string",
        "answer.tags": "json",
    }
    count = next(f for f in form.walk() if f.name == "answer.count")
    assert count.attrs["min"] == "1" and count.attrs["max"] == "10" and count.attrs["step"] == "1"
    assert count.value == "2" and count.has_default
    size = next(f for f in form.walk() if f.name == "answer.size")
    assert size.options == [('"small"', "small"), ('"large"', "large")]
    zip_code = next(f for f in form.walk() if f.name == "answer.address.zip")
    assert zip_code.attrs["pattern"] == "^[0-9]{5}$" and not zip_code.required
    approved = next(f for f in form.walk() if f.name == "answer.approved")
    assert approved.description == "Ship it?"


def test_a_form_makes_the_answer_the_api_takes() -> None:
    form = form_for(ORDER_SCHEMA)
    value = answer_from(
        form,
        {
            "answer.approved": "true",
            "answer.size": '"large"',
            "answer.count": "3",
            "answer.address.city": "Oslo",
            "answer.address.zip": "",
            "answer.tags": '["a", "b"]',
        },
    )
    assert value == {
        "approved": True,
        "size": "large",
        "count": 3,
        "address": {"city": "Oslo"},
        "tags": ["a", "b"],
    }
    assert validate_answer("t", ORDER_SCHEMA, value) == value


def test_what_the_form_cannot_mean_names_its_field() -> None:
    form = form_for({"type": "object", "properties": {"n": {"type": "integer"}}})
    with pytest.raises(FormError, match=r"^'three' is not a whole number$") as caught:
        answer_from(form, {"answer.n": "three"})
    assert caught.value.name == "answer.n"
    with pytest.raises(FormError, match="not valid JSON"):
        answer_from(form_for({"type": "array"}), {"answer": "[1,"})


def test_a_question_without_a_schema_takes_json_or_text() -> None:
    form = form_for(None)
    assert form.kind == "json"
    assert answer_from(form, {"answer": '{"a": 1}'}) == {"a": 1}
    assert answer_from(form, {"answer": "just words"}) == "just words"


def test_a_top_level_boolean_is_approve_or_reject() -> None:
    form = form_for({"type": "boolean"})
    assert form.kind == "boolean"
    assert answer_from(form, {"answer": "true"}) is True
    assert answer_from(form, {"answer": "false"}) is False


def test_refs_to_defs_are_followed_as_pydantic_writes_them() -> None:
    schema = {
        "$defs": {"Address": {"type": "object", "properties": {"city": {"type": "string"}}}},
        "type": "object",
        "properties": {
            "home": {"$ref": "#/$defs/Address"},
            "work": {"allOf": [{"$ref": "#/$defs/Address"}], "default": None},
        },
    }
    kinds = {f.name: f.kind for f in form_for(schema).walk()}
    assert kinds["answer.home"] == "object" and kinds["answer.home.city"] == "string"
    assert kinds["answer.work.city"] == "string"


def test_a_validation_error_lands_on_its_field() -> None:
    form = form_for(ORDER_SCHEMA)
    assert field_of_error(form, "count").name == "answer.count"
    assert field_of_error(form, "address.city").name == "answer.address.city"
    assert field_of_error(form, "tags[0]").name == "answer.tags"
    assert field_of_error(form, "(the answer)").name == "answer"
    assert field_of_error(form, "nowhere").name == "answer"


@given(st.integers(min_value=-(10**6), max_value=10**6))
def test_an_integer_survives_the_form(n: int) -> None:
    form = form_for({"type": "integer"})
    assert answer_from(form, {"answer": str(n)}) == n


@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40))
def test_a_string_survives_the_form(text: str) -> None:
    form = form_for({"type": "object", "properties": {"s": {"type": "string"}}, "required": ["s"]})
    assert answer_from(form, {"answer.s": text}) == {"s": text}
