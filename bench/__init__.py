"""LayerLab's benchmarks: LayerLab against the tools a user would pick instead, in one run.

``make bench`` (``tests/run_isolated.sh .venv/bin/python -m bench``) runs every benchmark, prints
one markdown table to stdout and writes the same results to ``bench/results/latest.json``::

    python -m bench                      # everything (a few minutes)
    python -m bench --quick              # small sizes, few repetitions: a smoke test
    python -m bench --only images        # one benchmark, or an area ("layers", "cli")
    python -m bench --list               # what there is

Adding a row: write ``@benchmark("name")`` functions returning :class:`bench.common.Result` in an
area module (``bench/layers.py``, ``bench/cli.py`` …) and list a new module in
``bench.__main__.AREAS``.
"""
