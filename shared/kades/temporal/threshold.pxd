# Read by Cython only (shared/setup.py; Python never sees this file): compiled, ThresholdFilter
# is an extension type whose attributes are slots of its C struct, not entries of a __dict__
# looked up by name on every read (the policy reads dozens a point). Each stays a Python
# object, so its values are what the source makes them (an int stays an int, None stays None).
# An attribute the class sets must be declared here too: the compiled class has no __dict__
# (tests/temporal/test_policy_compiled.py compares this list with what the source sets).
cdef class ThresholdFilter:
    cdef public object detector, threshold, cooldown_s, quiet_s, relearn_after_s
    cdef public object last_flag_time, last_over_time, last_flag_score, run_peak
    cdef public object anomalous_since, run_range, likelihood, episode_s, last_alert
    cdef public object last_parts, last_raw, clock, recent_flags, reading, flat_start
    cdef public object fresh_params, young_points, young, young_won, liquidity_seen, pools
    cdef public object alerted
