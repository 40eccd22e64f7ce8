"""The public API is small, sorted, and every name resolves."""

import selftaught


def test_all_is_sorted_and_resolves() -> None:
    assert selftaught.__all__ == sorted(selftaught.__all__) == sorted(selftaught._EXPORTS)
    for name in selftaught.__all__:
        assert getattr(selftaught, name) is not None


def test_unknown_name_is_an_attribute_error() -> None:
    try:
        selftaught.nothing_here  # noqa: B018
    except AttributeError as exc:
        assert "nothing_here" in str(exc)
    else:
        raise AssertionError("expected AttributeError")
