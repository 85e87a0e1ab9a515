"""Benchmark: the readers of untrusted text stay linear on the inputs that would make them not.

Run ``python bench/bench_linear.py``. It is a report, not a test: it always exits 0.

A 403 body and a log line come from outside. Two inputs are built to make a careless reader
quadratic (``tests/test_diagnostics.py`` checks what each returns; the time is measured here):

* ``explain_signature_mismatch`` on a body that repeats API Gateway's "The Canonical String
  for this request should have been" intro: a regex with two ``.*`` groups rescans the rest of
  the body from each repetition (the reader before this one did);
* ``redact`` on a token line followed by blank lines (``\\n``, `` \\n``, ``\\r\\n``): a pattern
  whose whitespace may cross lines scans every line after each one;
* ``redact`` on a quoted key (``"token":``) or ``Signature:`` followed by a long run of blanks:
  a pattern that lets the run be split in two (blanks, an optional line break, blanks) tries
  every split.

Each input is timed at three sizes, each twice the one before (best of 5 runs); a linear
reader takes about twice as long per doubling ("growth"), a quadratic one about four times.
"""

from __future__ import annotations

import itertools
import time
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from apigw_iam_auth import SigV4Signer, explain_signature_mismatch, redact

if TYPE_CHECKING:
    from collections.abc import Callable

MISMATCH = (
    "The request signature we calculated does not match the signature you provided. "
    "Check your AWS Secret Access Key and signing method. "
    "Consult the service documentation for details."
)
CANONICAL_INTRO = "The Canonical String for this request should have been\n'"
SIZES_KIB = (16, 32, 64)
LINES = (5_000, 10_000, 20_000)
GOAL_GROWTH = 3.0  # per doubling: linear is about 2, quadratic about 4


def best_of(run: Callable[[], object], repeats: int = 5) -> float:
    """The shortest of ``repeats`` timed runs, in seconds."""
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return min(times)


def report(title: str, sizes: tuple[int, ...], unit: str, runs: list[Callable[[], object]]) -> None:
    seconds = [best_of(run) for run in runs]
    growth = max(later / earlier for earlier, later in itertools.pairwise(seconds))
    verdict = "PASS" if growth < GOAL_GROWTH else "MISS"
    shown = ", ".join(
        f"{size} {unit}: {value * 1000:.2f} ms" for size, value in zip(sizes, seconds, strict=True)
    )
    print(f"{title:44} {shown}; growth per doubling {growth:.2f} (goal < {GOAL_GROWTH}) {verdict}")


def main() -> int:
    signer = SigV4Signer("us-east-1", credentials=("AKIDEXAMPLE", "secret"))
    signed = signer.sign(
        "GET",
        "https://abc123.execute-api.us-east-1.amazonaws.com/prod/pets",
        timestamp=datetime(2026, 1, 1, tzinfo=timezone.utc),
    ).signing

    def repeating_intro(kib: int) -> Callable[[], object]:
        body = MISMATCH + CANONICAL_INTRO * ((kib * 1024 - len(MISMATCH)) // len(CANONICAL_INTRO))
        return lambda: explain_signature_mismatch(body, signed)

    report(
        "403 body repeating the canonical intro",
        SIZES_KIB,
        "KiB",
        [repeating_intro(kib) for kib in SIZES_KIB],
    )
    for filler in ("\n", " \n", "\r\n"):
        texts = ["X-Amz-Security-Token: secret\n" + filler * lines for lines in LINES]
        report(
            f"redact: a token, then {filler!r} lines",
            LINES,
            "lines",
            [lambda text=text: redact(text) for text in texts],
        )
    for opening in ('"token":', "['x-amz-signature',", "Signature:"):
        texts = [opening + " " * (kib * 1024) + "x" for kib in SIZES_KIB]
        report(
            f"redact: {opening} then blanks",
            SIZES_KIB,
            "KiB",
            [lambda text=text: redact(text) for text in texts],
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
