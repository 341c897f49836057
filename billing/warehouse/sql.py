"""A small SQL tokenizer and the statement facts the HTTP layer needs.

The endpoint must know, without running a statement, whether it returns rows, which output
format it asks for, and for an INSERT where the inline data starts. Those facts are read from
tokens (strings, quoted identifiers, comments and parentheses are respected), never from regexes
over raw text. Text is handled as latin-1 so that character offsets equal byte offsets of the
request body.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from enum import Enum


class Kind(Enum):
    WORD = "word"
    NUMBER = "number"
    STRING = "string"
    QUOTED = "quoted"
    PUNCT = "punct"
    COMMENT = "comment"
    SPACE = "space"


@dataclass(frozen=True)
class Token:
    kind: Kind
    start: int
    end: int
    text: str
    depth: int
    complete: bool = True

    @property
    def upper(self) -> str:
        return self.text.upper()


_SPACE = " \t\n\r\f\v"
_WORD_START = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_") | {chr(c) for c in range(0x80, 0x100)}
_WORD_CHARS = _WORD_START | set("0123456789$")
_NUMBER_CHARS = set("0123456789abcdefABCDEFxX._+-pP")


def _close_quote(text: str, pos: int, quote: str) -> tuple[int, bool]:
    """End offset of the quoted token starting at ``pos`` (backslash escapes and doubled quotes)."""
    i = pos + 1
    n = len(text)
    while i < n:
        ch = text[i]
        if ch == "\\":
            i += 2
            continue
        if ch == quote:
            if i + 1 < n and text[i + 1] == quote:
                i += 2
                continue
            return i + 1, True
        i += 1
    return n, False


def _heredoc_end(text: str, pos: int) -> tuple[int, bool] | None:
    """(end, closed) of a ``$tag$...$tag$`` string starting at ``pos``; None when it is no heredoc."""
    close = text.find("$", pos + 1)
    if close < 0 or not all(c in _WORD_CHARS and c != "$" for c in text[pos + 1 : close]):
        return None
    tag = text[pos : close + 1]
    end = text.find(tag, close + 1)
    return (len(text), False) if end < 0 else (end + len(tag), True)


def tokenize(text: str) -> Iterator[Token]:
    """Yield the tokens of ``text``; ``depth`` is the parenthesis depth the token sits at."""
    i, n, depth = 0, len(text), 0
    while i < n:
        ch = text[i]
        start = i
        complete = True
        if ch in _SPACE:
            while i < n and text[i] in _SPACE:
                i += 1
            kind = Kind.SPACE
        elif text.startswith("--", i) or ch == "#":
            end = text.find("\n", i)
            i = n if end < 0 else end + 1
            kind = Kind.COMMENT
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            complete = end >= 0
            i = n if end < 0 else end + 2
            kind = Kind.COMMENT
        elif ch == "'":
            i, complete = _close_quote(text, i, "'")
            kind = Kind.STRING
        elif ch in "\"`":
            i, complete = _close_quote(text, i, ch)
            kind = Kind.QUOTED
        elif ch == "$" and (heredoc := _heredoc_end(text, i)) is not None:
            i, complete = heredoc
            kind = Kind.STRING
        elif ch.isdigit() or (ch == "." and i + 1 < n and text[i + 1].isdigit()):
            i += 1
            while i < n and text[i] in _NUMBER_CHARS and not (text[i] in "+-" and text[i - 1] not in "eEpP"):
                i += 1
            kind = Kind.NUMBER
        elif ch in _WORD_START:
            while i < n and text[i] in _WORD_CHARS:
                i += 1
            kind = Kind.WORD
        else:
            i += 1
            kind = Kind.PUNCT
            if ch == ")":
                depth = max(0, depth - 1)
        yield Token(kind, start, i, text[start:i], depth, complete)
        if kind is Kind.PUNCT and ch == "(":
            depth += 1


def significant(text: str) -> Iterator[Token]:
    """Tokens without whitespace and comments, produced lazily (INSERT data is never scanned)."""
    return (t for t in tokenize(text) if t.kind not in (Kind.SPACE, Kind.COMMENT))


ROW_KEYWORDS = frozenset({"SELECT", "WITH", "SHOW", "DESCRIBE", "DESC", "EXISTS", "EXPLAIN", "CHECK", "VALUES", "WATCH"})


@dataclass(frozen=True)
class Statement:
    """What the HTTP layer needs to know about one statement.

    ``keyword`` is the leading keyword (``SELECT`` for a parenthesised query); ``output_format``
    is the FORMAT clause of a query; for an INSERT with inline data, ``sql`` is the statement
    without its FORMAT clause, ``input_format`` the data format and ``data_start`` the offset in
    the analysed text where the data begins.
    """

    keyword: str
    returns_rows: bool
    output_format: str | None = None
    input_format: str | None = None
    sql: str = ""
    data_start: int | None = None
    needs_more: bool = False

    @property
    def is_data_insert(self) -> bool:
        return self.input_format is not None


def _data_start(text: str, pos: int) -> int:
    """ClickHouse rule: data begins after the first newline, or after the blanks when there is none."""
    n = len(text)
    while pos < n and text[pos] in " \t\f":
        pos += 1
    if pos < n and text[pos] == "\r":
        pos += 1
    if pos < n and text[pos] == "\n":
        pos += 1
    return pos


def _insert(text: str, tokens: Iterator[Token], final: bool) -> Statement:
    """Find the FORMAT or VALUES clause of an INSERT (data follows it) or its SELECT.

    Stops at the clause, so the data after it is never tokenized.
    """
    for index, tok in enumerate(tokens, start=1):
        if tok.depth or tok.kind is not Kind.WORD:
            continue
        word = tok.upper
        if word in ("SELECT", "WITH") and index > 2:
            return Statement("INSERT", False)
        if word == "VALUES":
            return Statement("INSERT", False, input_format="Values", sql=text[: tok.start].rstrip(), data_start=tok.end)
        if word == "FORMAT":
            name = next(tokens, None)
            if name is None or name.kind not in (Kind.WORD, Kind.QUOTED):
                return Statement("INSERT", False, needs_more=name is None and not final)
            if name.end >= len(text) and not final:
                return Statement("INSERT", False, needs_more=True)
            fmt = name.text.strip('"`')
            return Statement("INSERT", False, input_format=fmt, sql=text[: tok.start].rstrip(), data_start=_data_start(text, name.end))
    return Statement("INSERT", False, needs_more=not final)


def _output_format(tokens: list[Token]) -> str | None:
    """The top-level ``FORMAT name`` clause of a query (not the ``format()`` function)."""
    for index in range(len(tokens) - 1, 0, -1):
        tok = tokens[index - 1]
        name = tokens[index]
        if tok.depth == 0 and tok.kind is Kind.WORD and tok.upper == "FORMAT" and name.kind in (Kind.WORD, Kind.QUOTED):
            after = tokens[index + 1] if index + 1 < len(tokens) else None
            before = tokens[index - 2] if index >= 2 else None
            if (after is None or after.text != "(") and not (before and before.upper == "AS"):
                return name.text.strip('"`')
    return None


def analyze(text: str, final: bool = True) -> Statement:
    """Classify the first statement of ``text`` (a request's SQL, possibly followed by data).

    With ``final=False`` the text is the head of a longer body; ``needs_more`` is set when the
    answer depends on bytes not read yet.
    """
    tokens = significant(text)
    first = next(tokens, None)
    while first is not None and first.text == "(":
        first = next(tokens, None)
        if first is not None and first.kind is Kind.WORD:
            return _query("SELECT", text)
    if first is None or first.kind is not Kind.WORD:
        return Statement("", False)
    keyword = first.upper
    if keyword == "INSERT":
        return _insert(text, tokens, final)
    return _query(keyword, text)


def _query(keyword: str, text: str) -> Statement:
    """A statement that is not an INSERT with data: its whole text is SQL."""
    if keyword not in ROW_KEYWORDS:
        return Statement(keyword, False)
    statement_tokens = []
    for tok in significant(text):
        if tok.text == ";" and tok.depth == 0:
            break
        statement_tokens.append(tok)
    return Statement(keyword, True, output_format=_output_format(statement_tokens))


def _quote_string(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def insert_from_file(sql: str, path: str, fmt: str) -> str:
    """``INSERT ... FROM INFILE path FORMAT fmt`` for the head ``sql`` of an INSERT with inline data.

    ``FROM INFILE`` goes after the table and column list, before a top-level SETTINGS clause.
    """
    before = None
    settings_at = len(sql)
    for tok in significant(sql):
        if (tok.depth == 0 and tok.kind is Kind.WORD and tok.upper == "SETTINGS" and before is not None
                and before.upper not in ("INTO", "TABLE") and before.text != "."):
            settings_at = tok.start
            break
        before = tok
    name = fmt if fmt.isalnum() else "`" + fmt.replace("`", "``") + "`"
    head, tail = sql[:settings_at].rstrip(), sql[settings_at:].strip()
    return f"{head} FROM INFILE {_quote_string(path)} {tail + ' ' if tail else ''}FORMAT {name}"



def tables_read_without_final(text: str, versioned: set[str]) -> list[str]:
    """The ``versioned`` tables (ReplacingMergeTree: several versions of a row until merged) that
    ``text`` reads after FROM or JOIN without FINAL, each once, in order. A name may be qualified
    (``db.table``) or quoted; the ``final = 1`` setting counts as FINAL everywhere."""
    tokens = list(significant(text))
    words = [t.upper for t in tokens]
    if any(words[i:i + 3] == ["FINAL", "=", "1"] for i in range(len(words))):
        return []
    found: list[str] = []
    for index, word in enumerate(words):
        if word not in ("FROM", "JOIN") or tokens[index].kind is not Kind.WORD:
            continue
        position = index + 1
        while position + 2 < len(tokens) and tokens[position + 1].text == ".":
            position += 2
        if position >= len(tokens) or tokens[position].kind not in (Kind.WORD, Kind.QUOTED):
            continue
        name = tokens[position].text.strip("`\"")
        if name in versioned and name not in found and not _final_follows(words[position + 1:position + 4]):
            found.append(name)
    return found


def _final_follows(rest: list[str]) -> bool:
    """FINAL right after a table name or past its alias (``t FINAL``, ``t AS a FINAL``, ``t a FINAL``)."""
    if rest[:1] == ["FINAL"]:
        return True
    if rest[:1] == ["AS"]:
        rest = rest[1:]
    elif not rest or rest[0] in _CLAUSES:
        return False
    return rest[1:2] == ["FINAL"]


_CLAUSES = frozenset({"WHERE", "PREWHERE", "GROUP", "ORDER", "LIMIT", "HAVING", "SETTINGS", "FORMAT", "SAMPLE",
                      "JOIN", "INNER", "LEFT", "RIGHT", "FULL", "CROSS", "ANY", "ALL", "SEMI", "ANTI", "ASOF",
                      "GLOBAL", "ARRAY", "ON", "USING", "UNION", "EXCEPT", "INTERSECT", "WINDOW", "QUALIFY", ")", ","})
"""Words that end a table expression (so the word after a table name is not an alias)."""
