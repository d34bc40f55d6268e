"""Signals other apps hook into without projects importing them."""

from django.dispatch import Signal

# Sent with ``projects`` (the Project objects a page is about to show): a receiver may attach what it
# shows about each (integrations attaches ``project.github``), in a constant number of queries.
projects_shown = Signal()
