"""A conversation over the articles: the session, follow-ups made standalone, the terminal loop."""
