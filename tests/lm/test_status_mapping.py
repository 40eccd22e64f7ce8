"""HTTP statuses map to the error that decides who is at fault: the server, the config, or one prompt."""

import pytest

from selftaught.errors import LMRequestError, PromptRejected
from selftaught.lm.retry import LMTransientError, error_for_status


@pytest.mark.parametrize(
    ("status", "message", "expected"),
    [
        (429, "slow down", LMTransientError),
        (503, "overloaded", LMTransientError),
        (413, "request entity too large", PromptRejected),
        (400, "This model's maximum context length is 8192 tokens", PromptRejected),
        (400, "unsupported parameter: n", LMRequestError),
        (401, "invalid api key", LMRequestError),
        (404, "model not found", LMRequestError),
    ],
)
def test_status_to_error(status: int, message: str, expected: type[Exception]) -> None:
    error = error_for_status(status, message)
    assert type(error) is expected
