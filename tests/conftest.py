"""Shared test settings: hypothesis profiles, float64 helpers."""

import os

import torch
from hypothesis import HealthCheck, settings

# "dev": random examples each run (finds new bugs). "ci" (make test): derandomized, so CI is repeatable.
settings.register_profile("dev", deadline=None, max_examples=40,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.register_profile("ci", parent=settings.get_profile("dev"), derandomize=True, database=None,
                          print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))

torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
