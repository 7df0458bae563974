"""The agents' side: agent accounts, logins and tokens; the inbox, replies, notes and corrections; the
statistics the console shows.

May import: `bot.infra`, `bot.model`. Nothing here knows about HTTP or the dialogue policy.
"""
