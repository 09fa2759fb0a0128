"""Development tooling for running Inqueue on one machine. Never imported by Lambda code, never in the layer."""
