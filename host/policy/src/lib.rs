//! Pure policy decisions: egress allow-lists and address ranges, capability grants, resource limits.
