"""Google Calendar: its client, OAuth settings, account lookup and registration."""
