"""Parse and time every Markdown transcript of the Changelog catalog.

    python bench/parse_catalog.py [--tarball PATH] [--limit N]

Extracts the tarball to a temporary folder (never into the repo), runs ``load_transcript`` on each
``.md`` transcript, and prints how many parsed, each failure with its error, and the total and
median time per file. Exits 1 if any file failed.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tarfile
import tempfile
import time
from pathlib import Path

from rag.config import catalog_path

from rag.parsers import load_transcript

DEFAULT_TARBALL = catalog_path()


def transcript_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*.md") if p.name != "ABOUT.md")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tarball", type=Path, default=DEFAULT_TARBALL)
    parser.add_argument("--limit", type=int, default=0, help="parse only the first N files")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="rag-catalog-") as tmp:
        with tarfile.open(args.tarball) as tar:
            tar.extractall(tmp, filter="data") if hasattr(tarfile, "data_filter") \
                else tar.extractall(tmp)
        files = transcript_files(Path(tmp))
        if args.limit:
            files = files[:args.limit]
        timings: list[float] = []
        failures: list[tuple[str, str]] = []
        paragraphs = turns = markers = 0
        started = time.perf_counter()
        for path in files:
            t0 = time.perf_counter()
            try:
                transcript = load_transcript(path)
            except Exception as err:  # the benchmark reports every failure, whatever its kind
                failures.append((str(path.relative_to(tmp)), f"{type(err).__name__}: {err}"))
                continue
            finally:
                timings.append(time.perf_counter() - t0)
            turns += len(transcript.turns)
            for turn in transcript.turns:
                paragraphs += len(turn.paragraphs)
                markers += sum(len(p.markers) for p in turn.paragraphs)
        total = time.perf_counter() - started

    print(f"files:       {len(files)}")
    print(f"parsed:      {len(files) - len(failures)}")
    print(f"failures:    {len(failures)}")
    for name, error in failures:
        print(f"  FAIL {name}: {error}")
    print(f"turns:       {turns}   paragraphs: {paragraphs}   markers: {markers}")
    if timings:
        print(f"total time:  {total:.2f} s   median per file: "
              f"{statistics.median(timings) * 1000:.1f} ms   max: {max(timings) * 1000:.1f} ms")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
