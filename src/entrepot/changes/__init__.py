"""The change feed: every committed record change, per dataset, in commit order."""
