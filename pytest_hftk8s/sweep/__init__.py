"""The scaling sweep's judgement, as pure functions: load levels x replicas, and the USL fit.

- :mod:`.search`: the highest sustainable rate at one replica count, by doubling then bisecting
  over a ``probe(rate) -> SweepProbe`` callable, within a time budget and a resolution;
- :mod:`.criteria`: what makes one probe sustainable (client p99, accepted/offered orders, a valid run);
- :mod:`.usl`: the Universal Scalability Law fitted to (N, X) points, with confidence intervals;
- :mod:`.verdict`: the knee and the sentence a platform team reads.

It reads and writes the typed records of :mod:`pytest_hftk8s.results` only. It must not deploy, run
load, query Prometheus or know pytest: :mod:`pytest_hftk8s.orchestration.sweep` does those and hands
the measurements in.
"""
