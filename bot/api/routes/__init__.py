"""The API's routes, one module per kind of client: visitors, Rasa REST clients, agents, live sockets,
operations, and the static pages. Each takes what it needs through the typed dependencies of `bot.api.deps`."""
