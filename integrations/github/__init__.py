"""Syncing a project's generated files to a GitHub repository as one commit (Git Data API)."""
