"""Reports over REST."""

REPORTS = "/api/after-hours/reports"
