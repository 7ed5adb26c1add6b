"""Event webhooks: endpoints programs register, and signed deliveries of what happened to them."""
