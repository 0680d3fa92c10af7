"""Partner access audit: flags partner-API accesses to message content that consent does not cover."""
