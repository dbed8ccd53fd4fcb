"""A manager's team: everyone reporting to them, directly or through managers below (any depth)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import aliased

from storage.models import User


def team_members(manager_id: str) -> Any:
    """The ids of everyone reporting to ``manager_id`` (a recursive CTE with one column, ``id``)."""
    team = select(User.id).where(User.manager_id == manager_id).cte("team", recursive=True)
    below = aliased(User)
    # UNION (not ALL): a loop in manager_id ends instead of recursing forever.
    return team.union(select(below.id).join(team, below.manager_id == team.c.id))
