"""One function per rule: the job's files in, its files out (see :class:`..runner.Job`).

This is where files meet the domain packages: stages read inputs, build typed settings from the
rule's params (:mod:`..config`), call array-level functions and write outputs atomically.
Rule params hold only what a job uses, so changing one setting reruns only the jobs it affects.
One module per conda environment (``envs/``), so a job imports only what its env provides:
:mod:`.prepare`, :mod:`.simulation`, :mod:`.diffusion`, :mod:`.evaluation`.
"""
