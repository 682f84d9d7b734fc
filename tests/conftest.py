import os
import sys

# The GPU kernels run in numba-cuda's simulator unless FMEDU_GPU_TESTS=1 asks for the real GPU
# (`make test-gpu`); the setting must be in place before numba is first imported.
if os.environ.get("FMEDU_GPU_TESTS") == "1":
    os.environ["NUMBA_ENABLE_CUDASIM"] = "0"
else:
    os.environ.setdefault("NUMBA_ENABLE_CUDASIM", "1")

if os.environ["NUMBA_ENABLE_CUDASIM"] == "1":
    # The simulator runs each GPU lane as a Python thread, and a barrier waits until its polling
    # thread has seen every lane arrive; with the interpreter's default 5 ms between thread
    # switches that wait dominates the GPU tests (measured: 13.3 s for one small epoch at
    # 32 lanes, 6.6 s at 0.1 ms).
    sys.setswitchinterval(1e-4)

import torch
from hypothesis import settings

torch.set_num_threads(1)
settings.register_profile("ci", max_examples=60, deadline=None, derandomize=True)
settings.register_profile("dev", max_examples=60, deadline=None)
settings.load_profile("ci" if os.environ.get("CI") else "dev")
