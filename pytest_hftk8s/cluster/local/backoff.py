"""Kubelet's container restart backoff, with a scale factor so tests can shorten it.

Its job: answer "how long to wait before restarting a container that just exited". It follows
kubelet (``kuberuntime_manager.doBackOff`` with ``flowcontrol.Backoff``): the first exit restarts at
once; after that 10 s, doubling up to 5 min; the history is forgotten once the container has run
for 2 x 5 min = 10 min since its last restart. Pure arithmetic on the times it is given: no clocks,
no processes.
"""

from __future__ import annotations

from dataclasses import dataclass

INITIAL_SECONDS = 10.0
MAX_SECONDS = 300.0


@dataclass
class CrashBackoff:
    """Per-container backoff state. ``scale`` multiplies every duration (1.0 = Kubernetes)."""

    scale: float = 1.0
    _duration: float | None = None
    _last_restart: float = 0.0

    @property
    def initial(self) -> float:
        return INITIAL_SECONDS * self.scale

    @property
    def cap(self) -> float:
        return MAX_SECONDS * self.scale

    @property
    def reset_after(self) -> float:
        return 2 * self.cap

    def delay_after_exit(self, now: float) -> float:
        """Seconds to wait before restarting a container that exited at ``now``; advances the state."""
        if self._duration is not None and now - self._last_restart > self.reset_after:
            self._duration = None  # ran long enough: like kubelet, start the schedule again
        delay = 0.0 if self._duration is None else self._duration
        self._duration = self.initial if self._duration is None else min(self._duration * 2, self.cap)
        self._last_restart = now + delay
        return delay
