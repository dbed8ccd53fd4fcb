"""Feature handlers. The order below is the routing order, declared once."""

from bot.dialogs import engine as dialogs
from handlers import (
    activity,
    customers,
    digest,
    escalation,
    exports,
    followup,
    grades,
    help,
    history,
    plans,
    queue,
    requests,
    visits,
)

# Global commands first (help, cancel), then features (request keywords before the visit dialog, so that 跟台 …
# typed during a visit dialog starts a request), then a rep's plain-text answer to a department's question, then
# the fallback that always answers. The taps on every form's cards (choice, confirmation) are the dialog engine's.
ROUTERS = [
    help.router,
    escalation.router,
    history.router,
    requests.router,
    queue.router,
    followup.router,
    plans.router,
    activity.router,
    customers.router,
    grades.router,
    digest.router,
    exports.router,
    visits.router,
    dialogs.router,
    requests.late_router,
    help.fallback_router,
]


def command_words() -> frozenset[str]:
    """Every command word the routers answer (folded, see ``bot.core.routing.fold_word``)."""
    return frozenset().union(*(router.command_words() for router in ROUTERS))
