"""The workflow boundary: where Snakemake, config keys and ``results/`` paths meet the domain.

- :mod:`.layout`: every ``results/`` path template and each stage's target list.
- :mod:`.config`: the checks the schema cannot express and the typed settings; the only module
  that names config keys.
- :mod:`.inputs`: finding the user's files from the config's globs, reading label images.
- :mod:`.stages`: one function per rule, files in and files out.
- :mod:`.runner`: running a stage as a Snakemake job (log file, one-line errors).

The domain packages (``io``, ``simulate``, ``sketch``, ``diffusion``, ``evaluate``) never import
from here.
"""
