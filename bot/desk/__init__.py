"""The agents' side: agent accounts, logins and tokens; the inbox, replies, notes and corrections; the
statistics the console shows; answers' revisions, canned replies, the intents page and example proposals,
round-robin assignment, and customer data (export, erasure).

May import: `bot.infra`, `bot.model`. Nothing here knows about HTTP or the dialogue policy.
"""
