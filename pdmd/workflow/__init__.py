"""FireWorks adapters: thin firetasks around `pdmd.pipeline` and the builders of the YAML workflows."""
