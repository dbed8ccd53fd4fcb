"""Console renderer: neutral cards → HTML fragments (Jinja2, autoescaped)."""

from __future__ import annotations

from functools import lru_cache

from jinja2 import Environment, PackageLoader, select_autoescape

from cards.model import Card


@lru_cache(maxsize=1)
def _env() -> Environment:
    return Environment(loader=PackageLoader("cards", "templates"), autoescape=select_autoescape(["html"]))


def render_card(card: Card) -> str:
    """The card as an HTML fragment; buttons carry their packed payload in ``data-payload``."""
    return _env().get_template("console_card.html").render(card=card)
