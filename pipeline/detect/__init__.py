"""Detection: the registry's partnership periods, the rules of SPEC §3 and the alerts of §5."""
