"""Infrastructure shared by the conversation, the desk and the API: the SQL store (SQLAlchemy models and
Alembic migrations), the live-event bus (in-process or Redis) and its `Event`, the settings, rate limits and
client addresses, telemetry (Prometheus metrics, JSON logs), and office hours.

May import: `bot.model`. Nothing here knows about HTTP routes, dialogue or the agents' desk.
"""
