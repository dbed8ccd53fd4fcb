"""Request types from config: checks across sections and the task-title templates (Jinja2, sandboxed).

Titles are templates over the request's fields, e.g. ``备器械 {{ kit }}（{{ surgery_date }}）``. They are rendered
with sample data by ``config check`` so that a typo in a variable name or a syntax error is caught before a rep
meets it.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from functools import lru_cache
from typing import TYPE_CHECKING

from jinja2 import StrictUndefined, TemplateError
from jinja2.sandbox import SandboxedEnvironment

from bot.infra.words import fold_word

if TYPE_CHECKING:
    from jinja2 import Template

    from bot.config import RequestTypeConfig, Settings

# Variables every title may use besides the request type's own field keys.
COMMON_VARIABLES = ("customer", "ward", "requester", "request_no", "type_name")
TITLE_MAX_CHARS = 60


@lru_cache(maxsize=1)
def _env() -> SandboxedEnvironment:
    # Plain text (cards escape on rendering), undefined names are errors, no template can reach Python objects.
    return SandboxedEnvironment(undefined=StrictUndefined, autoescape=False)


@lru_cache(maxsize=256)
def _template(source: str) -> Template:
    return _env().from_string(source)


def render_title(source: str, values: Mapping[str, str]) -> str:
    """The task title for ``values`` (missing optional fields render empty); never raises."""
    try:
        text = _template(source).render(**values)
    except TemplateError:
        return source
    return " ".join(text.split())[:TITLE_MAX_CHARS]


def sample_values(rt: RequestTypeConfig) -> dict[str, str]:
    """Realistic values for every variable a title of ``rt`` may use."""
    values = {"customer": "浙江大学医学院附属第一医院", "ward": "骨科", "requester": "王磊", "request_no": "R1"}
    values["type_name"] = rt.name_zh
    for f in rt.fields:
        if f.key in values:
            continue
        values[f.key] = {"date": "2026-12-03", "choice": f.choices[0] if f.choices else ""}.get(f.type, "示例")
    return values


def check_request_types(settings: Settings, reserved: Collection[str] = frozenset()) -> list[tuple[str, str]]:
    """Problems across sections as (TOML path, message): unknown departments, keyword clashes (with each other and
    with ``reserved``, the folded words built-in commands answer), bad templates, escalation overrides for departments
    or request types that do not exist."""
    problems: list[tuple[str, str]] = []
    owner: dict[str, str] = {}
    for key, rt in settings.request_types.items():
        base = f"request_types.{key}"
        for i, word in enumerate(rt.keywords):
            folded = fold_word(word)
            if not folded:
                problems.append((f"{base}.keywords.{i}", "empty keyword"))
            elif folded in reserved:
                problems.append((f"{base}.keywords.{i}", f"'{word}' is a built-in command"))
            elif folded in owner:
                problems.append((f"{base}.keywords.{i}", f"'{word}' is already a keyword of {owner[folded]}"))
            else:
                owner[folded] = key
        labels: dict[str, str] = {}
        for i, f in enumerate(rt.fields):
            for word in (f.key, f.label_zh, f.label_en, *f.aliases):
                folded = word.casefold()
                if folded in labels and labels[folded] != f.key:
                    problems.append((f"{base}.fields.{i}", f"'{word}' also names field '{labels[folded]}'"))
                labels.setdefault(folded, f.key)
        samples = sample_values(rt)
        for i, task in enumerate(rt.tasks):
            path = f"{base}.tasks.{i}"
            if task.department not in settings.departments:
                known = ", ".join(settings.departments) or "none"
                problems.append((f"{path}.department", f"unknown department '{task.department}' (known: {known})"))
            for name in ("title_zh", "title_en"):
                source = getattr(task, name)
                if not source:
                    continue
                try:
                    _env().from_string(source).render(**samples)
                except TemplateError as exc:
                    variables = ", ".join(sorted(samples))
                    problems.append((f"{path}.{name}", f"template does not render: {exc} (variables: {variables})"))
    esc = settings.escalation
    for key in esc.departments:
        if key not in settings.departments:
            problems.append((f"escalation.departments.{key}", f"unknown department '{key}'"))
    for key in esc.request_types:
        if key not in settings.request_types:
            problems.append((f"escalation.request_types.{key}", f"unknown request type '{key}'"))
    return problems
