"""A handler whose init fails, as a typo or a missing dependency would make it fail on Lambda."""

raise RuntimeError("init failed on purpose")


def lambda_handler(event, context):  # never reached
    return event
