"""The model artifact and everything that loads and runs a student: the registry and its files, the tokenizer,
the encoder, intent classification, the answer retriever, the served model, hot reload, micro-batching, and
the typed reports (`metrics.json`, `calibration.json`) written beside the weights.

May import: the standard library and third-party packages only, no other `bot` package. `distill` builds on
this package (and reads the store through `bot.infra.store` for harvesting); nothing here knows about
conversations, agents or HTTP.
"""
