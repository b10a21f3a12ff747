"""Customer data normalized and SHA-256 hashed by Facebook's rules, customer files read in blocks, and the worker
processes that hash the parts of a large file side by side.

Light on purpose: loading it imports the standard library only (the SDK's Normalize and pycountry load when a ZIP or
COUNTRY value needs them), so ``python -m fb_hashing`` starts in a few hundredths of a second. fb_audience starts one
such worker per core on a large quote-free CSV file: each reads its own byte range (whole lines), hashes it a column at
a time, and writes finished users payloads to its standard output; the parent only sends them.

The worker's output, one frame per batch: a JSON line ``{"rows", "read", "bytes"}`` then ``bytes`` bytes of payload
JSON; at the end one JSON line ``{"done": true, "read", "invalid", "invalid_rows", "peak_rss_kb"}`` (invalid rows by number
and field names, never values), or ``{"done": true, "error", "fix"}`` when the file cannot be read. Nothing else is printed:
values never leave the worker except hashed.
"""

from __future__ import annotations

import bisect
import contextlib
import itertools
import json
import re
import sys
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from typing import Any, BinaryIO, TypeVar, cast

_Item = TypeVar("_Item")

try:  # CPython's own SHA-256: a quarter faster than OpenSSL's for the short values of customer lists (no EVP setup)
    from _sha256 import sha256  # type: ignore[import-not-found]  # no stub: typeshed covers hashlib only
except ImportError:  # pragma: no cover - other Pythons (3.12 renamed it _sha2)
    from hashlib import sha256

# ---------------------------------------------------------------------------------------------------------------
# Normalization and hashing, value by value
# ---------------------------------------------------------------------------------------------------------------


SCHEMA_KEYS = (
    "EMAIL",
    "PHONE",
    "FN",
    "LN",
    "CT",
    "ST",
    "ZIP",
    "COUNTRY",
    "DOBY",
    "DOBM",
    "DOBD",
    "GEN",
    "EXTERN_ID",
    "MADID",
)
UNHASHED_KEYS = frozenset({"EXTERN_ID", "MADID"})
# Conversions API user_data keys → the same rules ("DOB" is the full date, YYYYMMDD).
CAPI_KEYS = {
    "em": "EMAIL",
    "ph": "PHONE",
    "fn": "FN",
    "ln": "LN",
    "ct": "CT",
    "st": "ST",
    "zp": "ZIP",
    "country": "COUNTRY",
    "ge": "GEN",
    "db": "DOB",
    "external_id": "EXTERN_ID",
}

_ALIASES = {
    "EMAIL": ("email", "e-mail", "email_address", "e-mail address", "mail", "emailaddress", "em"),
    "PHONE": ("phone", "phone_number", "phone number", "telephone", "tel", "mobile", "mobile_phone", "cell", "ph"),
    "FN": ("fn", "first_name", "first name", "firstname", "given_name", "forename"),
    "LN": ("ln", "last_name", "last name", "lastname", "surname", "family_name"),
    "CT": ("ct", "city", "town"),
    "ST": ("st", "state", "region", "province"),
    "ZIP": ("zip", "zipcode", "zip_code", "zip code", "postal_code", "postal code", "postcode", "zp"),
    "COUNTRY": ("country", "country_code", "country code"),
    "DOBY": ("doby", "birth_year", "year_of_birth", "dob_year"),
    "DOBM": ("dobm", "birth_month", "month_of_birth", "dob_month"),
    "DOBD": ("dobd", "birth_day", "day_of_birth", "dob_day"),
    "GEN": ("gen", "gender", "sex", "ge"),
    "EXTERN_ID": ("extern_id", "external_id", "externalid", "customer_id", "user_id"),
    "MADID": ("madid", "mobile_advertiser_id", "advertising_id", "idfa", "aaid", "gaid", "maid"),
}
ALIASES: dict[str, str] = {}
for _key, _names in _ALIASES.items():
    for _name in _names:
        ALIASES[re.sub(r"[\s_\-]", "", _name.lower())] = _key

_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_MONTHS = {
    m: i
    for i, names in enumerate(
        [
            ("jan", "january"),
            ("feb", "february"),
            ("mar", "march"),
            ("apr", "april"),
            ("may",),
            ("jun", "june"),
            ("jul", "july"),
            ("aug", "august"),
            ("sep", "sept", "september"),
            ("oct", "october"),
            ("nov", "november"),
            ("dec", "december"),
        ],
        start=1,
    )
    for m in names
}
_GENDERS = {
    "m": "m",
    "male": "m",
    "man": "m",
    "boy": "m",
    "mr": "m",
    "masculine": "m",
    "f": "f",
    "female": "f",
    "woman": "f",
    "girl": "f",
    "ms": "f",
    "mrs": "f",
    "feminine": "f",
}
_COUNTRY_ALIASES = {"uk": "gb", "england": "gb", "scotland": "gb", "wales": "gb", "usa": "us", "america": "us"}


def schema_key(name: str) -> str | None:
    """The schema key a column header (or CAPI key) means: 'E-mail' → EMAIL, 'first_name' → FN; None if unknown."""
    text = str(name).strip()
    if text.upper() in SCHEMA_KEYS or text.upper() == "DOB":
        return text.upper()
    return ALIASES.get(re.sub(r"[\s_\-]", "", text.lower()))


def _letters(value: str) -> str:
    """Unicode letters only, lowercased (NFC, so a decomposed é equals a composed one)."""
    return "".join(ch for ch in unicodedata.normalize("NFC", value).lower() if ch.isalpha())


def _country(value: str) -> str | None:
    import pycountry
    from facebook_business.adobjects.serverside.normalize import Normalize

    text = value.strip()
    letters = re.sub(r"[^a-z]", "", text.lower())
    if letters in _COUNTRY_ALIASES:
        return _COUNTRY_ALIASES[letters]
    if len(letters) == 2 and Normalize.is_valid_country_code(letters):
        return letters
    try:
        return pycountry.countries.lookup(text).alpha_2.lower()
    except LookupError:
        return None


_PHONE_JUNK_RE = re.compile(r"[^\d\s+().\-/]")
_NON_DIGIT_RE = re.compile(r"\D")
_INTL_PREFIX_RE = re.compile(r"^\+?0{0,2}")  # as Normalize.get_international_number
_INTL_NUMBER_RE = re.compile(r"^\d{1,4}\(?\d{2,3}\)?\d{4,}$")  # as Normalize.get_international_number


def _international_number(digits: str) -> str | None:
    """Normalize.get_international_number with its patterns compiled once (it compiles one per call)."""
    digits = _INTL_PREFIX_RE.sub("", digits)
    if digits.startswith("0"):
        return None
    matched = _INTL_NUMBER_RE.match(digits)
    return matched.group() if matched else None


def _phone(value: str) -> str | None:
    text = value.strip()
    if _PHONE_JUNK_RE.search(text) or "+" in text[1:]:
        return None  # letters (an extension, a note) or a + in the middle: not one phone number
    digits = _NON_DIGIT_RE.sub("", text)
    if text.startswith("+"):
        digits = digits.lstrip("0")  # "+0044…" means what "+44…" does
    elif digits.startswith("00"):
        digits = digits[2:]  # international call prefix
    elif digits.startswith("0"):
        return None  # a national number: no country code to send
    number = _international_number(digits)
    return number if number and 7 <= len(number) <= 15 else None


def _int_in(value: str, low: int, high: int, width: int) -> str | None:
    text = value.strip()
    if not text.isdigit() or len(text) > width:
        return None
    number = int(text)
    return f"{number:0{width}d}" if low <= number <= high else None


def _dob(value: str) -> str | None:
    digits = re.sub(r"\D", "", value)
    if len(digits) != 8:
        return None
    try:
        date(int(digits[:4]), int(digits[4:6]), int(digits[6:]))
    except ValueError:
        return None
    return digits if 1900 <= int(digits[:4]) <= date.today().year else None


def normalize_value(key: str, value: str) -> str | None:
    """``value`` normalized by Facebook's rules for ``key`` (not hashed); None when it is not a valid value."""
    if value is None:
        return None
    text = str(value).strip()
    if not text:
        return None
    k = CAPI_KEYS.get(key) or schema_key(key) or key.upper()
    if k == "EMAIL":
        email = text.lower()
        return email if _EMAIL_RE.match(email) else None
    if k == "PHONE":
        return _phone(text)
    if k in ("FN", "LN", "CT"):
        return _letters(text) or None
    if k == "ST":
        return _letters(text) or None
    if k == "ZIP":
        from facebook_business.adobjects.serverside.normalize import Normalize

        zip_code = Normalize.normalize_field_skip_hashing("zp", text)  # lowercased, no spaces, before the first "-"
        return zip_code if zip_code and zip_code.isalnum() else None
    if k == "COUNTRY":
        return _country(text)
    if k == "DOBY":
        return _int_in(text, 1900, date.today().year, 4) if len(text) == 4 else None
    if k == "DOBM":
        month = text.lower().rstrip(".")
        return f"{_MONTHS[month]:02d}" if month in _MONTHS else _int_in(text, 1, 12, 2)
    if k == "DOBD":
        return _int_in(text, 1, 31, 2)
    if k == "DOB":
        return _dob(text)
    if k == "GEN":
        return _GENDERS.get(_letters(text))
    if k == "EXTERN_ID":
        return text
    if k == "MADID":
        madid = text.lower()
        return madid if _UUID_RE.match(madid) else None
    raise ValueError(f"unknown customer data key {key!r}")


def normalize_and_hash(key: str, value: str) -> str | None:
    """What Facebook is sent for one value: normalized then SHA-256 (hex); EXTERN_ID / MADID (and CAPI external_id)
    normalized only; an already-hashed 64-hex value passes through. None when the value is not valid for the key."""
    k = CAPI_KEYS.get(key) or schema_key(key) or key.upper()
    if k in UNHASHED_KEYS:
        return normalize_value(k, value)
    if value is None:
        return None
    text = str(value).strip().lower()
    if _SHA256_RE.match(text):
        return text
    normalized = normalize_value(k, value)
    return sha256(normalized.encode("utf-8")).hexdigest() if normalized is not None else None


# ---------------------------------------------------------------------------------------------------------------
# Whole columns, chunks and batches
# ---------------------------------------------------------------------------------------------------------------

MAX_BATCH_ROWS = 10_000
MAX_REPORTED_INVALID = 100


class CustomerFileError(ValueError):
    """A customer file that cannot be read as it is (one line of message, and its fix)."""

    def __init__(self, message: str, fix: str) -> None:
        super().__init__(message)
        self.fix = fix


@dataclass
class Schema:
    keys: list[str]  # schema keys in sending order
    columns: list[int]  # the source column of each key
    ignored: list[str]  # header cells we do not know (names only: headers are not customer data)


@dataclass
class InvalidRow:
    row: int
    fields: list[str]


_PHONE_PUNCTUATION = b" +().-/"


def _phone_digits(text: str) -> bytes | None:
    """_phone(text), encoded, for a stripped, non-blank value: ASCII digits with common punctuation are decided here
    (bytes operations, several times faster), anything else by _phone itself, so both always agree."""
    digits = text.encode().translate(None, _PHONE_PUNCTUATION)
    if not digits.isdigit():
        phone = _phone(text)
        return None if phone is None else phone.encode()
    if text.find("+", 1) != -1:
        return None  # a + in the middle: not one phone number
    if text[0] == "+":
        digits = digits.lstrip(b"0")  # "+0044…" means what "+44…" does
    elif digits.startswith(b"00"):
        digits = digits[2:]  # international call prefix
    elif digits[:1] == b"0":
        return None  # a national number: no country code to send
    number = digits.lstrip(b"0")
    if len(digits) - len(number) > 2:  # as _international_number: at most two more leading zeros are dropped
        return None
    return number if 7 <= len(number) <= 15 else None


def _hash_email_column(values: list[str]) -> list[str | None]:
    """normalize_and_hash("EMAIL", ·) of each value: "" for a blank one, None for an invalid one. Whole-column steps
    (every value hashed, then the few blank, hashed or invalid ones put right) cost far less per value in Python."""
    texts = [value.strip().lower() for value in values]
    out: list[str | None] = [sha256(text).hexdigest() for text in map(str.encode, texts)]
    for index in _positions(list(map(bool, map(_EMAIL_RE.match, texts))), False):
        text = texts[index]
        out[index] = "" if not text else text if len(text) == 64 and _SHA256_RE.match(text) else None
    return out


def _hash_phone_column(values: list[str]) -> list[str | None]:
    """normalize_and_hash("PHONE", ·) of each value: "" for a blank one, None for an invalid one."""
    texts = [value.strip() for value in values]
    numbers = [_phone_digits(text) if text else b"" for text in texts]
    out: list[str | None] = [
        sha256(number).hexdigest() if number else None if number is None else "" for number in numbers
    ]
    for index in _positions(numbers, None):
        text = texts[index].lower()
        if len(text) == 64 and _SHA256_RE.match(text):
            out[index] = text  # already hashed
    return out


def _hash_any_column(key: str) -> Any:
    def hash_column(values: list[str]) -> list[str | None]:
        return [normalize_and_hash(key, value) if value.strip() else "" for value in values]

    return hash_column


_COLUMN_HASHERS = {"EMAIL": _hash_email_column, "PHONE": _hash_phone_column}


def _column(rows: list[list[Any]], index: int) -> list[str]:
    """One column of ``rows`` as strings ("" where a row is short or the cell is None)."""
    return [
        ""
        if index >= len(cells) or cells[index] is None
        else cells[index]
        if type(cells[index]) is str
        else str(cells[index])
        for cells in rows
    ]


def _positions(items: list[Any], value: Any) -> Iterator[int]:
    """The indexes at which ``value`` sits in ``items`` (list.index scans in C: invalid rows are few)."""
    index = -1
    with contextlib.suppress(ValueError):
        while True:
            index = items.index(value, index + 1)
            yield index


@dataclass
class Chunk:
    """Source rows, a chunk at a time: their numbers and the cells of each schema column (strings)."""

    numbers: list[int]
    columns: list[list[str]]


def _chunk_of_rows(schema: Schema, numbers: list[int], rows: list[list[Any]]) -> Chunk:
    return Chunk(numbers, [_column(rows, index) for index in schema.columns])


def hash_chunk(schema: Schema, chunk: Chunk) -> tuple[list[list[str]], list[InvalidRow]]:
    """The chunk's rows normalized and hashed, column by column (several times faster than row by row; lists of
    strings also keep the garbage collector idle, where a tuple per row would wake it), and the invalid rows with the
    fields that make them so (names only)."""
    hashed = [
        (_COLUMN_HASHERS.get(key) or _hash_any_column(key))(column) for key, column in zip(schema.keys, chunk.columns)
    ]
    bad: dict[int, list[str]] = {}
    for key, column in zip(schema.keys, hashed):
        for index in _positions(column, None):
            bad.setdefault(index, []).append(key)
    for index in _positions(hashed[0], ""):
        if index not in bad and not any(column[index] for column in hashed):
            bad[index] = ["(empty row)"]
    skipped = sorted(bad)
    if skipped:
        hashed = [_without(column, skipped) for column in hashed]
    # what is left has no None: a row with an invalid value is in `skipped`
    return cast(list[list[str]], hashed), [InvalidRow(chunk.numbers[index], bad[index]) for index in skipped]


def _without(items: list[_Item], skipped: list[int]) -> list[_Item]:
    """``items`` without the (sorted) indexes ``skipped``, copied slice by slice."""
    starts = [0, *(index + 1 for index in skipped)]
    ends = [*skipped, len(items)]
    return list(itertools.chain.from_iterable(items[start:end] for start, end in zip(starts, ends)))


def hashed_batches(
    schema: Schema,
    chunks: Iterator[Chunk],
    invalid: list[InvalidRow],
    counts: dict[str, int],
    size: int = MAX_BATCH_ROWS,
) -> Iterator[list[list[str]]]:
    """Batches of ``size`` hashed rows (the last one shorter), each a list of columns, from the source's chunks;
    invalid rows go to ``invalid`` (the first MAX_REPORTED_INVALID) and ``counts``."""
    batch: list[list[str]] = [[] for _ in schema.keys]
    for chunk in chunks:
        counts["read"] += len(chunk.numbers)
        sent, refused = hash_chunk(schema, chunk)
        counts["invalid"] += len(refused)
        invalid.extend(refused[: MAX_REPORTED_INVALID - len(invalid)])
        for column, values in zip(batch, sent):
            column.extend(values)
        while len(batch[0]) >= size:
            full, batch = [column[:size] for column in batch], [column[size:] for column in batch]
            yield full
    if batch[0]:
        yield batch


def payload_json(schema: Schema, columns: list[list[str]]) -> str:
    """The users payload as JSON text, from a batch's columns. Hashed values are 64 hex digits or empty, so their rows
    are joined as they are (five times faster than json.dumps); EXTERN_ID and MADID values go through json.dumps."""
    if UNHASHED_KEYS.intersection(schema.keys):
        return json.dumps({"schema": schema.keys, "data": list(zip(*columns))}, separators=(",", ":"))
    rows = '"],["'.join(map('","'.join, zip(*columns)))
    return f'{{"schema":{json.dumps(schema.keys)},"data":[["{rows}"]]}}'


# ---------------------------------------------------------------------------------------------------------------
# Quote-free CSV files, by byte ranges of whole lines
# ---------------------------------------------------------------------------------------------------------------

NOT_UTF8_FIX = "Save the file as UTF-8 text (in Excel: Save As, then 'CSV UTF-8')"


@dataclass(frozen=True)
class Span:
    """Whole lines of a file: bytes [start, end), the first of them line ``first_row`` of the file (the header is 1)."""

    start: int
    end: int
    first_row: int


def _decoded(lines: list[bytes], first_row: int) -> str:
    try:
        return b"".join(lines).decode("utf-8")
    except UnicodeDecodeError:
        for number, line in enumerate(lines, start=first_row):
            with contextlib.suppress(UnicodeDecodeError):
                line.decode("utf-8")
                continue
            raise CustomerFileError(f"Line {number} of the file is not UTF-8 text", NOT_UTF8_FIX) from None
        raise


def split_block(text: str, width: int) -> list[list[str]] | None:
    """The cells of a block of quote-free CSV lines, column by column, when every line has ``width`` cells; None for
    ragged or blank lines. One split of the whole block, then slices: no per-line work in Python. Each line break is
    kept at the end of its line's last cell, so the count of breaks among the last cells proves every line's width."""
    if "\r" in text:
        text = text.replace("\r\n", "\n")
    if text.endswith("\n"):
        text = text[:-1]
    if not text or (width == 1 and ("\n\n" in text or text.startswith("\n"))):  # wider, a blank line is ragged
        return None
    lines = text.count("\n") + 1
    cells = text.replace("\n", "\n,").split(",")
    if len(cells) != width * lines:
        return None
    last = "".join(cells[width - 1 :: width])
    if last.count("\n") != lines - 1:
        return None
    return [cells[index::width] for index in range(width - 1)] + [last.split("\n")]


def block_chunk(text: str, first_row: int, width: int, columns: list[int]) -> Chunk:
    """A block of quote-free CSV lines (line ``first_row`` of the file first) as a Chunk of the schema's columns:
    what csv.reader reads from them, blank lines skipped (their numbers too)."""
    split = split_block(text, width)
    if split is not None:
        return Chunk(list(range(first_row, first_row + len(split[0]))), [split[i] for i in columns])
    text = text.replace("\r\n", "\n")
    lines = (text[:-1] if text.endswith("\n") else text).split("\n")
    numbered = [(number, line.split(",")) for number, line in enumerate(lines, start=first_row) if line]
    rows = [cells for _, cells in numbered]
    return Chunk([number for number, _ in numbered], [_column(rows, index) for index in columns])


def span_chunks(handle: BinaryIO, span: Span, width: int, columns: list[int], size: int) -> Iterator[Chunk]:
    """The records of ``span`` of a quote-free CSV file (opened in binary), ``size`` lines at a time."""
    handle.seek(span.start)
    remaining, first = span.end - span.start, span.first_row
    while remaining > 0:
        lines = list(itertools.islice(handle, size))
        if not lines:
            return
        ends = list(itertools.accumulate(map(len, lines)))
        if ends[-1] > remaining:  # the span ends at a line's end: the lines after it are the next span's
            lines = lines[: bisect.bisect_left(ends, remaining) + 1]
        remaining -= ends[len(lines) - 1]
        yield block_chunk(_decoded(lines, first), first, width, columns)
        first += len(lines)


# ---------------------------------------------------------------------------------------------------------------
# The worker process
# ---------------------------------------------------------------------------------------------------------------


def _frame(out: BinaryIO, head: dict[str, Any], body: bytes = b"") -> None:
    out.write(json.dumps(head).encode() + b"\n" + body)
    out.flush()


def work(job: dict[str, Any], out: BinaryIO) -> None:
    """Hash ``job``'s span of a customer file and write its batches to ``out`` as frames (see the module's text)."""
    schema = Schema(job["keys"], job["columns"], [])
    span = Span(job["start"], job["end"], job["first_row"])
    invalid: list[InvalidRow] = []
    counts = {"read": 0, "invalid": 0}
    try:
        with open(job["path"], "rb") as handle:
            chunks = span_chunks(handle, span, job["width"], schema.columns, job["size"])
            for batch in hashed_batches(schema, chunks, invalid, counts, job["size"]):
                payload = payload_json(schema, batch).encode()
                _frame(out, {"rows": len(batch[0]), "read": counts["read"], "bytes": len(payload)}, payload)
    except CustomerFileError as error:
        _frame(out, {"done": True, "error": str(error), "fix": error.fix})
        return
    except OSError as error:
        _frame(
            out,
            {
                "done": True,
                "error": f"The file could not be read ({error.strerror or type(error).__name__})",
                "fix": "Check that the file is still there and readable, then run the upload again",
            },
        )
        return
    _frame(
        out,
        {
            "done": True,
            "read": counts["read"],
            "invalid": counts["invalid"],
            "invalid_rows": [[row.row, row.fields] for row in invalid],
            "peak_rss_kb": _peak_rss_kb(),
        },
    )


def _peak_rss_kb() -> int | None:
    """This process's peak resident memory (VmHWM), where /proc tells it."""
    with contextlib.suppress(OSError, ValueError):
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    return None


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m fb_hashing JOB_JSON (started by fb_audience, one per core)", file=sys.stderr)
        return 2
    work(json.loads(argv[0]), sys.stdout.buffer)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
