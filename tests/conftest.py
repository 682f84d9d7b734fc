import os

# The GPU kernels run in numba-cuda's simulator unless FMEDU_GPU_TESTS=1 asks for the real GPU
# (`make test-gpu`); the setting must be in place before numba is first imported.
if os.environ.get("FMEDU_GPU_TESTS") == "1":
    os.environ["NUMBA_ENABLE_CUDASIM"] = "0"
else:
    os.environ.setdefault("NUMBA_ENABLE_CUDASIM", "1")

import torch
from hypothesis import settings

torch.set_num_threads(1)
settings.register_profile("ci", max_examples=60, deadline=None, derandomize=True)
settings.register_profile("dev", max_examples=60, deadline=None)
settings.load_profile("ci" if os.environ.get("CI") else "dev")
