"""The bot runtime: NLU, retriever, policy, dialogue, store and the chat API. Imports no training code."""
