"""Staff web pages: sign-in, campaigns, agents and phone numbers, API keys."""
