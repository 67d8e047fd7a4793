"""A small typed client for the Entrepot HTTP API (used by the CLI and ``entrepot sync``)."""

from entrepot.client.http import (
    Client,
    ClientError,
    ExportStream,
    FeedPage,
    RetryPolicy,
)

__all__ = ["Client", "ClientError", "ExportStream", "FeedPage", "RetryPolicy"]
