"""The deployment sequence's rules without a loop: silence on the served clock across reboots,
the battery threshold and the forced attempt, retries, cool-down, the backup circuit, commands."""

from __future__ import annotations

import pytest

from flightsw.components.deployment_rules import (
    DeploymentRefused,
    DeployRecord,
    DeploySettings,
    Refusal,
    Step,
    advance,
    burn_result,
    first_record,
    next_step,
    rearm,
    resume_after_reset,
    retry,
    silence_remaining,
    skip,
    start_burn,
)
from flightsw.core.enums import DeploymentState as S

SET = DeploySettings(silence_s=2700.0, circuits=2, min_battery_v=7.4, max_wait_s=43200.0, cooldown_s=60.0,
                     attempts_per_circuit=2)


def reboot(rec: DeployRecord) -> DeployRecord:
    """What the next boot reads back from the state store."""
    again = DeployRecord.from_state(rec.to_state())
    assert again == rec
    return again


def test_silence_is_served_across_reboots_and_never_again() -> None:
    rec = first_record(SET)
    assert rec.state is S.SILENCE and next_step(rec, 8.0, SET) is Step.SILENCE
    assert not advance(rec, 1200.0, SET)
    rec = reboot(rec)  # a reboot during silence continues it: 1500 s left, not 2700
    assert silence_remaining(rec, SET) == pytest.approx(1500.0)
    assert not advance(rec, 1499.0, SET) and next_step(rec, 8.0, SET) is Step.SILENCE
    assert advance(rec, 1.0, SET)  # ends exactly once
    assert rec.state is S.ARMED and silence_remaining(rec, SET) == 0.0
    assert not advance(rec, 10.0, SET)
    rec = reboot(rec)  # a reboot after it never silences again
    assert rec.silence_done and silence_remaining(rec, SET) == 0.0
    assert next_step(rec, 8.0, SET) is Step.BURN


def test_bench_first_boot_is_deployed_and_silent_never() -> None:
    rec = first_record(DeploySettings(first_boot="deployed"))
    assert rec.state is S.DEPLOYED and rec.silence_done
    assert next_step(rec, 8.0, SET) is Step.NOTHING


def test_battery_threshold_then_forced_attempt_after_max_wait() -> None:
    rec = first_record(SET)
    advance(rec, 2700.0, SET)
    assert next_step(rec, 7.3, SET) is Step.WAIT_BATTERY
    assert next_step(rec, None, SET) is Step.WAIT_BATTERY  # no reading is not a good battery
    advance(rec, 43199.0, SET)
    assert next_step(rec, 7.3, SET) is Step.WAIT_BATTERY
    advance(rec, 1.0, SET)
    assert next_step(rec, 7.3, SET) is Step.FORCED_BURN
    assert next_step(rec, 7.4, SET) is Step.BURN


def test_retries_cooldown_then_backup_circuit_then_failed() -> None:
    rec = first_record(SET)
    advance(rec, 2700.0, SET)
    outcomes = []
    for _ in range(4):
        assert next_step(rec, 8.0, SET) is Step.BURN
        start_burn(rec)
        assert rec.state is S.BURNING and next_step(rec, 8.0, SET) is Step.NOTHING
        outcomes.append((rec.circuit, rec.attempt))
        out = burn_result(rec, False, SET)
        if rec.state is S.FAILED:
            break
        assert rec.state is S.COOLDOWN and next_step(rec, 8.0, SET) is Step.COOLING
        advance(rec, 59.0, SET)
        assert next_step(rec, 8.0, SET) is Step.COOLING
        advance(rec, 1.0, SET)
        if len(outcomes) == 2:
            assert out.switched_circuit
    assert outcomes == [(0, 1), (0, 2), (1, 1), (1, 2)]  # primary twice, then backup twice
    assert rec.state is S.FAILED and rec.attempts_total == 4 and out.final


def test_second_attempt_of_the_primary_deploys() -> None:
    rec = first_record(SET)
    advance(rec, 2700.0, SET)
    start_burn(rec)
    burn_result(rec, False, SET)
    advance(rec, 60.0, SET)
    assert next_step(rec, 8.0, SET) is Step.BURN
    start_burn(rec)
    out = burn_result(rec, True, SET)
    assert out.released and out.final and rec.state is S.DEPLOYED
    assert (rec.circuit, rec.attempt, rec.attempts_total) == (0, 2, 2)


def test_a_reset_during_a_burn_counts_the_attempt_and_reads_the_switch() -> None:
    rec = first_record(SET)
    advance(rec, 2700.0, SET)
    start_burn(rec)
    rec = reboot(rec)
    assert rec.state is S.BURNING
    out = resume_after_reset(rec, False, SET)
    assert out is not None and rec.state is S.COOLDOWN and rec.attempt == 1
    assert resume_after_reset(rec, False, SET) is None  # only a BURNING record is resumed
    start_burn(rec)
    assert resume_after_reset(rec, True, SET) is not None and rec.state is S.DEPLOYED


def test_operator_commands() -> None:
    rec = first_record(SET)
    with pytest.raises(DeploymentRefused) as refused:
        retry(rec, 0, SET)
    assert refused.value.reason is Refusal.SILENCE
    with pytest.raises(DeploymentRefused):
        rearm(rec)
    skip(rec)  # skipping during silence stops the burns, not the silence
    advance(rec, 2700.0, SET)
    assert rec.state is S.SKIPPED and next_step(rec, 8.0, SET) is Step.NOTHING
    retry(rec, 1, SET)  # the backup circuit, fresh attempts, now
    assert (rec.state, rec.circuit, rec.attempt) == (S.ARMED, 1, 0)
    with pytest.raises(DeploymentRefused) as refused:
        retry(rec, 2, SET)
    assert refused.value.reason is Refusal.NO_CIRCUIT
    start_burn(rec)
    with pytest.raises(DeploymentRefused) as refused:
        skip(rec)
    assert refused.value.reason is Refusal.BURNING
    burn_result(rec, False, SET)
    rearm(rec)
    assert (rec.state, rec.circuit, rec.attempt) == (S.ARMED, 0, 0) and rec.attempts_total == 1


def test_an_unreadable_record_is_none() -> None:
    assert DeployRecord.from_state(None) is None
    assert DeployRecord.from_state({"state": "EXPLODED"}) is None
