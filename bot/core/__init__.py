"""The neutral vocabulary of the event flow (inbound events, intents, conversation state) and the dispatcher
(routers, context): what channels, handlers and services share, naming no platform."""
