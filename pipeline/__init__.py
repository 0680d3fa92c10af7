"""Partner access audit: flags partner-API accesses to messages that consent does not cover."""
