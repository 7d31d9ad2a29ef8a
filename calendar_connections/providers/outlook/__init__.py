"""Outlook through Microsoft Graph: its client, OAuth settings, account lookup, recurrence
dialect and registration."""
