"""Parse and check times of the front end (median of 20 after warm-up). Prints JSON.

Cases: the largest example, and a generated file of 1,000 statements (100 models of 10
statements each: data, steps, 3 schedules, a net, destroy, two generates, objective).
"""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path

import dtg
from dtg.syntax import parse

ROOT = Path(__file__).resolve().parent.parent


def generated(models: int = 100) -> str:
    parts = []
    for i in range(models):
        parts.append(f"""model m{i} {{
  data x : real[2] ~ moons()
  steps T = 50
  schedule b(t) = 1e-4 + (0.02 - 1e-4) * (t - 1) / (T - 1)
  schedule a(t) = sqrt(1 - b(t))
  schedule s(t) = sqrt(b(t))
  net eps : (real[2], time) -> real[2] = mlp(hidden = [64, 64])
  destroy x[t] ~ Normal(a(t) * x[t-1], s(t))
  generate x[T] ~ Normal(0, 1)
  generate x[t-1] ~ Guess(x[t], eps)
  objective denoising
}}
""")
    return "".join(parts)


def median_time(function, repeats: int = 20) -> float:
    function()  # warm-up (builds the cached parser)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    largest = max((ROOT / "examples").glob("*.dtg"), key=lambda p: p.stat().st_size)
    text = largest.read_text()
    big = generated()
    results = {
        "largest_example": largest.name,
        "largest_example_bytes": len(text),
        "parse_largest_ms": 1e3 * median_time(lambda: parse(text)),
        "check_largest_ms": 1e3 * median_time(lambda: dtg.loads(text)),
        "generated_statements": 1000,
        "parse_1000_statements_ms": 1e3 * median_time(lambda: parse(big), repeats=5),
        "check_1000_statements_ms": 1e3 * median_time(lambda: dtg.loads(big), repeats=3),
    }
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
