"""A visitor's conversation, turn by turn: the dialogue service, how a turn reads and writes its conversation
(turn_store), the policy that turns the model's scores into a decision, the rasa-sdk actions and the runner
that executes them in-process, orders and the proof that a visitor owns one, and per-client caps.

May import: `bot.desk` (a hand-off puts the conversation in the agents' inbox), `bot.infra`, `bot.model`.
"""
