"""Applications and their credentials: API keys (with rotation) and client secrets."""
