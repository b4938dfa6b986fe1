"""Language models: the answerer that asks them, chat clients, credentials, the limits
on a server's reply, provider errors."""
