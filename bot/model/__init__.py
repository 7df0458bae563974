"""The model artifact and everything that loads and runs a student: the registry and its files, the tokenizer,
the encoder, intent classification, the answer retriever and the templates file, the served model, hot reload
(with the console's answer edits laid over it), micro-batching, a message's language, the typed reports
(`metrics.json`, `calibration.json`) written beside the weights, and the registry as the models page shows it.

May import: the standard library and third-party packages only, no other `bot` package. `distill` builds on
this package (and reads the store through `bot.infra.store` for harvesting); nothing here knows about
conversations, agents or HTTP.
"""
