"""After Hours: timed, location-based matching sessions."""
