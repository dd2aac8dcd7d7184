"""Notifications to people where they are (issue 17): the I/O around domain/notifications.py.

`routes.py` reads the routes; `sources.py` plans the messages of each source (alerts,
flights about to land, requests assigned, boxes received, scheduled reports); `outbox.py`
stores them, one `notification` row each, and sends them through `channels.py` (apprise)
under the rate limit, with retries; `service.py` is the scheduler's job. docs/notifications.md.
"""
