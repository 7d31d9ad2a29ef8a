"""What every provider's batch writes share: reading one call's answer, and sending throttled
calls again in later requests with the session's retry policy (tenacity, as ``session`` does)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import requests
from tenacity import RetryCallState, Retrying, retry_if_result, stop_after_attempt
from tenacity.wait import wait_base, wait_exponential_jitter
from urllib3.exceptions import InvalidHeader

from ..ical.rrule import RecurrenceError
from .errors import ProviderError, ProviderRejected, ProviderUnavailable
from .http import RetryPolicy
from .session import RATE_LIMIT_REASONS, raise_for_status, reason_of, summary_of
from .types import CalendarClient, RemoteEvent, RemoteGone, Write, WriteConflict, WriteResult

_VERBS = {"insert": "create an event", "update": "update an event", "delete": "delete an event"}


@dataclass(frozen=True)
class CallAnswer:
    """The HTTP answer to one call inside a batch: status, headers, decoded JSON body."""

    status: int
    headers: Mapping[str, str]
    body: Any = None

    def header(self, name: str) -> str | None:
        """A header's value, whatever its case."""
        return next((v for k, v in self.headers.items() if k.lower() == name.lower()), None)


def batch_answers(
    response: requests.Response,
    label: str,
    decode: Callable[[requests.Response], dict[int, CallAnswer]],
) -> dict[int, CallAnswer]:
    """Each call's answer in a batch request's response, by index; a failed or unreadable
    batch request is the whole batch's error."""
    raise_for_status(response, label, "write a batch of events")
    try:
        return decode(response)
    except ValueError as exc:
        raise ProviderUnavailable(f"{label} sent an unreadable batch answer") from exc


@dataclass(frozen=True)
class Throttled:
    """A call the provider asked to be sent again (429, 5xx, a rate-limit 403, a 401)."""

    error: ProviderError
    retry_after: float | None = None


Answer = WriteResult | Throttled
# Sends one provider request holding ``writes``; answers in their order.
SendOnce = Callable[[list[Write]], list[Answer]]


def answer_for(
    write: Write,
    answer: CallAnswer,
    label: str,
    translate: Callable[[dict[str, Any]], RemoteEvent],
    policy: RetryPolicy,
) -> Answer:
    """What one batched call's answer means for its write."""
    status = answer.status
    if status < 300:
        if write.action == "delete" or not isinstance(answer.body, dict):
            return WriteResult()
        return WriteResult(remote=translate(answer.body))
    if status in (404, 410) and write.action != "insert":
        if write.action == "delete":
            return WriteResult()  # already deleted
        return WriteResult(error=RemoteGone(write.external_id or ""))
    if status in (409, 412) and write.action == "update":
        return WriteResult(error=WriteConflict(write.external_id or ""))
    reason = reason_of(answer.body)
    detail = summary_of(answer.body, None)
    action = _VERBS[write.action]
    if status in (401, 429) or status >= 500 or (status == 403 and reason in RATE_LIMIT_REASONS):
        message = f"{label} answered HTTP {status} to {action} after retries: {detail}"
        return Throttled(ProviderUnavailable(message, status=status), _retry_after(answer, policy))
    message = f"{label} refused to {action} (HTTP {status}): {detail}"
    return WriteResult(error=ProviderRejected(message, status=status, reason=reason))


def _retry_after(answer: CallAnswer, policy: RetryPolicy) -> float | None:
    value = answer.header("Retry-After")
    if value is None:
        return None
    try:
        return min(policy.build().parse_retry_after(value), policy.max_retry_after)
    except InvalidHeader:
        return None


class _WaitRetryAfter(wait_base):
    """The provider's Retry-After when a throttled call carried one, else exponential backoff."""

    def __init__(self, policy: RetryPolicy) -> None:
        self._backoff = wait_exponential_jitter(
            multiplier=policy.backoff_factor, max=policy.backoff_max, jitter=policy.jitter
        )

    def __call__(self, retry_state: RetryCallState) -> float:
        assert retry_state.outcome is not None
        throttled: list[Throttled] = retry_state.outcome.result()
        hinted = [answer.retry_after for answer in throttled if answer.retry_after is not None]
        return max(hinted) if hinted else float(self._backoff(retry_state))


def _last_round(state: RetryCallState) -> list[Throttled]:
    assert state.outcome is not None
    left: list[Throttled] = state.outcome.result()
    return left


def write_in_rounds(
    writes: Sequence[Write], send_once: SendOnce, size: int, policy: RetryPolicy
) -> list[WriteResult]:
    """Send ``writes`` in requests of ``size``; calls the provider throttled go again in a
    later request, on their own, as the retry policy allows. Results in the writes' order."""
    answers: list[Answer] = [WriteResult() for _ in writes]
    todo = list(range(len(writes)))

    def send_round() -> list[Throttled]:
        nonlocal todo
        again: list[int] = []
        for start in range(0, len(todo), size):
            chunk = todo[start : start + size]
            for index, answer in zip(chunk, send_once([writes[i] for i in chunk]), strict=True):
                answers[index] = answer
                if isinstance(answer, Throttled):
                    again.append(index)
        todo = again
        return [answer for answer in answers if isinstance(answer, Throttled)]

    retrying = Retrying(
        stop=stop_after_attempt(policy.attempts + 1),
        wait=_WaitRetryAfter(policy),
        retry=retry_if_result(bool),
        retry_error_callback=_last_round,
        reraise=True,
    )
    retrying(send_round)
    return [
        WriteResult(error=answer.error) if isinstance(answer, Throttled) else answer
        for answer in answers
    ]


def encode_each(
    writes: Sequence[Write], encode: Callable[[int, Write], Any]
) -> tuple[list[tuple[int, Any]], dict[int, WriteResult]]:
    """Each write's encoded call; a write the provider cannot express (a rule it has no
    pattern for) gets its error instead and is not sent."""
    encoded: list[tuple[int, Any]] = []
    refused: dict[int, WriteResult] = {}
    for index, write in enumerate(writes):
        try:
            encoded.append((index, encode(index, write)))
        except RecurrenceError as exc:
            refused[index] = WriteResult(error=exc)
    return encoded, refused


def read_round(
    writes: Sequence[Write],
    answers: Mapping[int, CallAnswer],
    refused: Mapping[int, WriteResult],
    read: Callable[[Write, CallAnswer], Answer],
    label: str,
) -> list[Answer]:
    """Each write's answer in one request's round: refused before sending, read from its
    call's answer, or sent again when the provider left it unanswered."""
    results: list[Answer] = []
    for index, write in enumerate(writes):
        answer = answers.get(index)
        if index in refused:
            results.append(refused[index])
        elif answer is None:
            results.append(
                Throttled(ProviderUnavailable(f"{label} left a batched call unanswered"))
            )
        else:
            results.append(read(write, answer))
    return results


def write_singly(client: CalendarClient, writes: Sequence[Write]) -> list[WriteResult]:
    """``write_batch`` for a provider without a batch endpoint: one request per write."""
    results = []
    for write in writes:
        try:
            results.append(WriteResult(remote=_write_one(client, write)))
        except (WriteConflict, RemoteGone, ProviderError, RecurrenceError) as exc:
            results.append(WriteResult(error=exc))
    return results


def _write_one(client: CalendarClient, write: Write) -> RemoteEvent | None:
    if write.action == "delete":
        assert write.external_id is not None
        client.delete(write.external_id)
        return None
    assert write.payload is not None
    if write.action == "insert":
        return client.insert(write.payload)
    assert write.external_id is not None
    return client.update(write.external_id, write.payload, write.etag)
