"""Webhooks: subscriptions, Standard Webhooks signing, dispatch from the feed, delivery."""
