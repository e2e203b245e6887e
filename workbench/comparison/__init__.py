"""The comparison with the real Placement: Placement 16.0.0 in-process (:mod:`.oracle`), on PostgreSQL
(:mod:`.postgres`), order-free comparison of answers (:mod:`.compare`), and the parity verdict with the
known Placement bugs (:mod:`.parity`)."""
