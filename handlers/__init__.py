"""Feature handlers. The order below is the routing order, declared once."""

from handlers import help, visits

# Global commands first (help, cancel), then features, then the fallback that always answers.
ROUTERS = [help.router, visits.router, help.fallback_router]
