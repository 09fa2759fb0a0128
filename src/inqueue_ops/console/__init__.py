"""The console: every event, its attempts and result, the queues and dead letters, replay, in a browser.

``inqueue console`` (``server.ConsoleServer``) or ``make run`` (``server.ConsoleService``) serve
it on 127.0.0.1. ``data.Console`` is what the pages show and do, without the web; ``web`` the
pages (Flask, server-rendered, a little JavaScript of our own that polls live regions);
``events`` lists recent events from the status table's index; ``queues`` reads the queues
without receiving from them; ``jobs`` runs redrive and purge with progress.
"""
