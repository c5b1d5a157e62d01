"""Sites (the spec's projects) and their API keys."""
