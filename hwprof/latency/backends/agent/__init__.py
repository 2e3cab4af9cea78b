"""The on-device agent: reads op plans as JSON lines, measures them, writes results.

Standard library plus the runtime (nnabla by default) only, Python 3.8+, so it
can be copied to a board that has neither hwprof nor pandas. Nothing in this
package imports the rest of hwprof; :mod:`hwprof.latency.backends.bundle`
packs it into a zip application that every backend runs.
"""

AGENT_VERSION = "16"  # 2: groups of ops sampled in rounds beside a reference op; 3: paced to the span;
# 4: a new table's level is the fastest common state; 5: 10-s span (a build's passes, each in
# its own process, make up the rest); 6: each op built twice, its samples take the instances in
# turn; 7: protocol settings ref_gap_ms (the reference timed after that much op sampling) and
# elasticity (a fixed one; the quick protocol's), max_span_s (networks: 2x their min span);
# 8: samples carried from far from the level with elasticity 1 (refstats.FAR_ELASTICITY);
# 9: protocol setting prime_ms (untimed calls before each timed block; networks: 3 ms);
# 10: protocol setting ref_prime_calls (untimed reference calls before each of its timed
# blocks; networks: 2); 11: op samples carried with elasticity 1, not a fitted one
# (protocol.OP_ELASTICITY); 12: the reference is a basket of three unlike blocks (protocol
# setting reference; reference_ops); 13: ops with "timed": false in a group are built and
# warmed up but not timed (an extra pass's context); 14: protocol setting placement_jitter;
# 15: op samples carried with elasticity 0.5 (protocol.OP_ELASTICITY); 16: an extra pass's
# context ops are sampled as spacers (protocol setting sample_context)
