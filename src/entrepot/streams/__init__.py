"""The change feed into NATS JetStream: configured streams, the lease, the publisher."""
