"""Every size limit modelport enforces, in one place.

A model file declares shapes; a crafted one can declare any size, and an overcommitting system
grants the allocation and kills the process only when it is filled. Readers refuse declared
shapes past ``MAX_ELEMENTS``; the parity check, which runs the model on a CPU and holds several
tensors at once, refuses inputs and intermediate tensors past the two ``MAX_CHECK_*`` caps.

Element caps are sanity bounds, not memory bounds (issue 19: a 139-byte file stayed under
them and took 4 GB): what a check may hold is sized in bytes against the memory budget in
``modelport.budget``, before anything is allocated.
"""

MAX_ELEMENTS = 1 << 34  # 16 G elements (64 GiB of float32): past this a shape is corrupt
MAX_CHECK_INPUT_ELEMENTS = 1 << 28  # one generated input of a check: 1 GiB of float32
MAX_CHECK_TENSOR_ELEMENTS = 1 << 30  # any one tensor of a check's run: 4 GiB of float32
