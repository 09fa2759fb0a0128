"""The local runner: the whole pipeline on one machine, no Docker, no AWS account.

Dev tooling only. Lambda code never imports it and the layer never ships it (the layer
build copies ``src/inqueue`` alone). It plays API Gateway (``gateway``) and the SQS event
source mapping (``poller``) and invokes the real handlers in-process (``functions``),
against a real SQS/SSM/DynamoDB/S3 implementation (``backends``).
"""
