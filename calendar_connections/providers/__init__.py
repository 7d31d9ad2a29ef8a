"""Provider clients: OAuth settings, HTTP sessions and calendar APIs of Google and Microsoft."""
