"""Rate limits, quotas and usage metering per application plan."""
