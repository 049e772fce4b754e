"""Fuzz harness: every decoder that takes bytes from outside, under one set of invariants.

Layout:

* :mod:`bench.fuzz.base` - the :class:`~bench.fuzz.base.Target` interface and the invariant
  error; :mod:`bench.fuzz.targets` - one module per area (LoRaWAN and gateway, codec, radios,
  MAVLink, configuration files, CLI), registered by name in ``bench.fuzz.targets.TARGETS``.
* :mod:`bench.fuzz.mutator` - a small deterministic mutator (bit flips, byte insert/delete,
  splice, interesting values, dictionary tokens, number rewrites, truncation) seeded by
  ``--seed``: the engine used where atheris is not installed, and by the bounded test.
* :mod:`bench.fuzz.engine` - runs a target on seeds and mutants with a per-input time bound,
  records defects (target, input, exception) and writes their inputs for replay.
* :mod:`bench.fuzz.atheris_runner` - the same targets under atheris (coverage-guided
  libFuzzer), one subprocess per target because libFuzzer ends the process when it is done.

Decisions worth knowing:

* **Where it lives.** In ``bench/``, beside the other benchmarks, not in the installed
  ``lora_telemetry`` package: it is a development tool with its own dependencies (atheris,
  the shared test data), and nothing at run time on a drone or gateway imports it. The bounded
  test (``test/test_fuzz.py``) imports it from the checkout, as the bench smoke tests run it.
* **Own mutator and atheris, not hypothesis.** Hypothesis generates structured values from
  strategies and shrinks failures; what finds parser defects here is mutating real inputs (the
  authentic frames of the vectors, the real flight logs, the shipped parameter files), which is
  what libFuzzer does with coverage and what the small mutator does without it. One set of
  target functions serves both engines, so the bounded test and the long campaign check the
  same invariants.
* **Regressions.** A defect's input, once fixed, is copied from the crash directory to
  ``test/fuzz_regressions/<target>/``; the bounded test replays every file there.
* **Invariants.** An input ends in a result or in the project's documented errors
  (``LoraTelemetryError`` and its subclasses, named per target), never another exception, a
  hang (``SIGALRM`` per input) or a traceback; a mutated authentic frame never passes the MIC;
  a decoded sample re-encodes to the same payload; state kept per unknown sender is bounded.
"""
