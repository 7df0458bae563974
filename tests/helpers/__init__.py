"""What the tests share besides fixtures: where things are, real servers and nginx, the clients that play
visitors, agents and browsers, the tiny models, and the cases both tiers run (tests/helpers/cases)."""
