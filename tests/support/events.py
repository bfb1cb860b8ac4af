"""Names of the Socket.IO events the tests listen for."""

MATCH = "after_hours:match"
NO_MATCHES = "after_hours:no_matches"
CLOSED = "after_hours:match_closed"
MESSAGE = "after_hours:message"
TYPING = "after_hours:typing"
SAVED = "after_hours:match_saved"
