"""The API's routes, one module per kind of client: visitors, Rasa REST clients, agents, live sockets,
operations."""
