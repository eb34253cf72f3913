"""The stream parser (llmbench/measure/sse_client.py) on hand-written bytes: chunked transfer coding, SSE events,
usage, errors."""

from llmbench.measure.sse_client import StreamResult, _apply_event, _dechunk


def test_dechunk_complete_partial_and_end():
    out, rest, ended = _dechunk(b"5\r\nhello\r\n3\r\nabc\r\n4\r\nwo")
    assert (out, rest, ended) == (b"helloabc", b"4\r\nwo", False)
    out, rest, ended = _dechunk(rest + b"rd\r\n0\r\n\r\n")
    assert (out, ended) == (b"word", True)


def test_events_text_usage_and_done():
    res = StreamResult()
    assert not _apply_event('{"choices":[{"index":0,"text":"Hi"}]}', res, 1.0)
    assert not _apply_event('{"choices":[{"index":0,"text":""}]}', res, 1.1)  # a token with no text: no chunk time
    assert not _apply_event('{"choices":[{"delta":{"content":"!"}}]}', res, 1.2)  # chat form
    assert not _apply_event('{"choices":[{"index":0,"text":"","finish_reason":"length"}],'
                            '"usage":{"prompt_tokens":8,"completion_tokens":5,"total_tokens":13}}', res, 1.3)
    assert res.chunk_times == [1.0, 1.2] and (res.prompt_tokens, res.completion_tokens) == (8, 5)
    assert res.finish_reason == "length"
    assert _apply_event("[DONE]", res, 1.4)


def test_error_event_ends_the_stream():
    res = StreamResult()
    assert _apply_event('{"error": "CB worker died"}', res, 2.0)
    assert res.status == "error" and "CB worker died" in res.error
