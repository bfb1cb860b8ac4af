"""Push: device tokens, and waking a phone through the host app's gateway when its user has no
live socket anywhere (docs/events.md, "Delivery")."""
