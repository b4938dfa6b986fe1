"""Language models: the answerer that asks them, chat clients, credentials, provider errors."""
