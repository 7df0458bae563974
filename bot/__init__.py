"""The bot runtime: the served student, the dialogue, the agents' desk and the chat API. Imports no training code.

Layers, each importing only the ones below it (enforced by the import-linter contracts in pyproject.toml):

    bot.cli            the command line: wires everything
    bot.api            HTTP and WebSocket: the app, routes, request/response schemas, typed dependencies
    bot.conversation   a visitor's turn: dialogue, policy, rasa-sdk actions, orders and their ownership
    bot.desk           the agents' side: accounts and tokens, the inbox, replies, notes, statistics
    bot.infra          infrastructure: the SQL store, the event bus, settings, rate limits, telemetry
    bot.model          the artifact format and everything that loads and runs a student; imports no other
                       bot package, and is the part `distill` builds on
"""
