"""fb_hashing: quote-free CSV files cut into spans of whole lines and read span by span, and the worker process's
output frames (what fb_audience's parallel hashing stands on)."""

from __future__ import annotations

import io
import json
import subprocess
import sys

from hypothesis import given, settings
from hypothesis import strategies as st

import fb_audience
import fb_hashing
from fb_hashing import Span, span_chunks

LINE = st.lists(st.text(alphabet="ab@.1 +-é", max_size=5), min_size=0, max_size=4).map(",".join)


def _read_spans(path, spans, width=3, size=4):
    with open(path, "rb") as handle:
        return [
            (n, [chunk.columns[i][k] for i in range(width)])
            for span in spans
            for chunk in span_chunks(handle, span, width, list(range(width)), size)
            for k, n in enumerate(chunk.numbers)
        ]


@settings(max_examples=150, deadline=None)
@given(
    st.lists(LINE, min_size=0, max_size=30),
    st.sampled_from(["\n", "\r\n"]),
    st.booleans(),
    st.integers(min_value=1, max_value=6),
)
def test_spans_are_whole_lines_and_read_as_the_whole_file_reads(tmp_path_factory, lines, newline, final_break, parts):
    path = tmp_path_factory.mktemp("spans") / "list.csv"
    path.write_bytes((newline.join(["email,phone,fn", *lines]) + (newline if final_break else "")).encode())
    data = fb_audience._csv_shape(str(path)).data
    spans = fb_audience.line_spans(str(path), data, parts)
    raw = path.read_bytes()
    assert [s.start for s in spans[1:]] == [s.end for s in spans[:-1]]  # contiguous
    assert (spans[0].start, spans[-1].end) == (data.start, data.end) if spans else data.start == data.end
    for span in spans:
        assert raw[span.start - 1 : span.start] == b"\n"  # each starts a line...
        assert span.first_row == raw.count(b"\n", 0, span.start) + 1  # ...whose number it knows
    assert len(spans) <= parts
    assert _read_spans(path, spans) == _read_spans(path, [data])


def test_a_span_reads_only_its_own_lines(tmp_path):
    path = tmp_path / "list.csv"
    path.write_bytes(b"email,phone\na@b.co,1\nc@d.co,2\ne@f.co,3\n")
    second = Span(len(b"email,phone\na@b.co,1\n"), len(b"email,phone\na@b.co,1\nc@d.co,2\n"), 3)
    with open(path, "rb") as handle:
        chunks = list(span_chunks(handle, second, 2, [1, 0], 10))
    assert [(c.numbers, c.columns) for c in chunks] == [([3], [["2"], ["c@d.co"]])]


def _frames(output: bytes) -> list[tuple[dict, bytes]]:
    frames, stream = [], io.BytesIO(output)
    while line := stream.readline():
        head = json.loads(line)
        frames.append((head, stream.read(head.get("bytes", 0))))
    return frames


def test_worker_writes_payload_frames_then_a_closing_frame(tmp_path):
    path = tmp_path / "list.csv"
    rows = [f"Person{i}@Example.com,+1 650 555 {i:04d}" for i in range(25)] + ["broken,12", ","]
    path.write_text("\n".join(["Email,Phone", *rows]) + "\n", encoding="utf-8")
    out = io.BytesIO()
    start = len("Email,Phone\n")
    fb_hashing.work(
        {
            "path": str(path),
            "start": start,
            "end": path.stat().st_size,
            "first_row": 2,
            "width": 2,
            "keys": ["EMAIL", "PHONE"],
            "columns": [0, 1],
            "size": 10,
        },
        out,
    )
    frames = _frames(out.getvalue())
    batches, (closing, _) = frames[:-1], frames[-1]
    assert [head["rows"] for head, _ in batches] == [10, 10, 5]
    payloads = [json.loads(body) for _, body in batches]
    assert all(p["schema"] == ["EMAIL", "PHONE"] for p in payloads)
    sent = [row for p in payloads for row in p["data"]]
    assert sent[0] == [
        fb_hashing.normalize_and_hash("EMAIL", rows[0].split(",")[0]),
        fb_hashing.normalize_and_hash("PHONE", rows[0].split(",")[1]),
    ]
    assert closing["peak_rss_kb"] > 0 and closing == {
        "done": True,
        "read": 27,
        "invalid": 2,
        "peak_rss_kb": closing["peak_rss_kb"],
        "invalid_rows": [[27, ["EMAIL", "PHONE"]], [28, ["(empty row)"]]],
    }
    assert b"Person" not in out.getvalue() and b"broken" not in out.getvalue()


def test_worker_reports_a_file_it_cannot_decode_in_its_closing_frame(tmp_path):
    path = tmp_path / "list.csv"
    path.write_bytes(b"email\na@b.co\nJos\xe9@example.com\n")
    out = io.BytesIO()
    fb_hashing.work(
        {
            "path": str(path),
            "start": 6,
            "end": path.stat().st_size,
            "first_row": 2,
            "width": 1,
            "keys": ["EMAIL"],
            "columns": [0],
            "size": 10,
        },
        out,
    )
    ((closing, _),) = _frames(out.getvalue())
    assert closing == {"done": True, "error": "Line 3 of the file is not UTF-8 text", "fix": fb_hashing.NOT_UTF8_FIX}


def test_worker_run_by_hand_says_how_it_is_used():
    done = subprocess.run([sys.executable, fb_hashing.__file__], capture_output=True, text=True)
    assert done.returncode == 2 and "usage: python -m fb_hashing JOB_JSON" in done.stderr and not done.stdout
