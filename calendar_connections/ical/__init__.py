"""Calendar rules shared by everyone: RFC 5545 recurrence and time zones."""
