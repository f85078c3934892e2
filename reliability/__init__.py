"""Reliability and security campaigns (`make reliability`): fuzzing of every parser of outside
bytes, uplink attacks against a running simulated satellite over its KISS TCP port, and the least
privilege checks. Each campaign has a short smoke version in the test suite (tests/campaigns).

Why a package beside ``flightsw`` (like ``bench``): the campaigns drive the flight software from
outside, as an attacker or a broken ground would, and are not part of what flies.
"""
