"""Every exception class of xlmr_np, in one place.

Each names one kind of problem; its message names the fix. All but UsageError derive from ValueError, so
`except ValueError` catches any bad input, as it did before these classes existed.
"""


class ConfigError(ValueError):
    """A config.json that cannot describe an XLM-R model."""


class InputError(ValueError):
    """An argument of a forward call that the model cannot use."""


class CheckpointError(ValueError):
    """A model directory or weight file is missing, unreadable, refused as unsafe, or corrupt."""


class SafetensorsError(ValueError):
    """A .safetensors file (or a tensor given to save_file) violates the format."""


class WeightsError(ValueError):
    """A checkpoint whose tensors do not fit the config or the model class."""


class PipelineError(ValueError):
    """An input or a model that a pipeline cannot work with; the message says what to change."""


class UsageError(Exception):
    """Bad options, no input, or a model that cannot serve the command: exit status 2 on the command line."""


class ProvenanceError(ValueError):
    """A golden recorded on other files than the ones given: the checkpoint or the inputs changed since."""
