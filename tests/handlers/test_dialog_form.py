"""Forms and the typed dialog state, without a database: which texts are corrections, which fields are validated
again, what a stored state of another shape does, and that the line parsers accept what the cards show."""

from __future__ import annotations

from datetime import date, datetime

from bot.config import RequestFieldConfig, RequestTaskConfig, RequestTypeConfig
from bot.dialogs.form import FieldSpec, Form
from bot.dialogs.state import VERSION, load
from bot.infra import i18n
from bot.parsing.request_parser import parse_request_line
from bot.parsing.visit_parser import parse_visit_line
from handlers.requests import RequestState
from handlers.visits import VisitState

OBJECTIONS = {"价格": ["price"], "交付": ["delivery"]}


async def _noop(d: object) -> None: ...


def _form() -> Form:
    return Form(
        [
            FieldSpec("customer", "医院", "Hospital", ("客户",), required=True),
            FieldSpec("ward", "科室", "Ward", depends_on=("customer",), validate=_noop),
            FieldSpec("contacts", "联系人", "Contacts", depends_on=("ward",), validate=_noop),
            FieldSpec("next_step", "下一步", "Next step"),
            FieldSpec("visited_at", "拜访时间", "Visit time", ("时间",)),
        ]
    )


def test_a_text_that_starts_with_a_field_is_a_direct_correction() -> None:
    form = _form()
    assert form.correction("拜访时间:昨天 15:00") == "direct"
    assert form.correction("拜访时间：昨天") == "direct"  # full-width colon
    assert form.correction("Next step: 送样") == "direct"  # a two-word label
    assert form.correction("ＷＡＲＤ:ICU") == "direct"  # width and case folded
    assert form.correction("浙二 科室:骨科") == "pairs"
    assert form.correction("价格下一步:送样") == "pairs"  # a key glued to the value before it
    assert form.correction("下午3:00") is None and form.correction("浙一") is None


def test_fields_depending_on_a_changed_one_are_validated_again_transitively() -> None:
    form = _form()
    assert [f.key for f in form.dependents({"customer"})] == ["ward", "contacts"]
    assert [f.key for f in form.dependents({"ward"})] == ["ward", "contacts"]
    assert form.dependents({"next_step"}) == []


def test_a_stored_state_of_another_shape_or_version_does_not_load() -> None:
    state = VisitState(token="t1", ward="骨科")
    data = state.model_dump(mode="json")
    assert load(VisitState, data) == state
    assert load(VisitState, {**data, "_exit": {"cards": []}}) == state  # the exit note is the conversation's
    assert load(VisitState, {"token": "t1", "draft": {}, "stage": "collect"}) is None  # before the engine
    assert load(VisitState, {**data, "v": VERSION + 1}) is None
    assert load(VisitState, {**data, "stage": "somewhere"}) is None
    assert load(RequestState, data) is None  # another flow's state


def test_the_visit_parser_takes_the_cards_labels_in_both_languages() -> None:
    now = datetime(2026, 11, 23, 10, 0)
    for locale in (i18n.ZH, i18n.EN):
        label = i18n.t(locale, "field.next_step")
        parsed = parse_visit_line(f"拜访 浙一 {label}:送样", now, OBJECTIONS)
        assert (parsed.customer, parsed.next_step, parsed.issues) == ("浙一", "送样", []), label
    parsed = parse_visit_line("Visit time: 昨天 15:00", now, OBJECTIONS)
    assert parsed.visited_at == datetime(2026, 11, 22, 15, 0) and parsed.issues == []


def test_the_request_parser_takes_a_two_word_label() -> None:
    rt = RequestTypeConfig(
        name_zh="跟台",
        name_en="Surgery",
        keywords=["跟台"],
        fields=[
            RequestFieldConfig(key="customer", label_zh="医院", label_en="Hospital", type="customer"),
            RequestFieldConfig(key="kit", label_zh="器械", label_en="Surgery kit"),
        ],
        tasks=[RequestTaskConfig(department="logistics", title_zh="备 {{ kit }}")],
    )
    parsed = parse_request_line(rt, "浙一 Surgery kit: 脊柱A包", date(2026, 11, 23))
    assert parsed.values == {"customer": "浙一", "kit": "脊柱A包"} and parsed.issues == []
