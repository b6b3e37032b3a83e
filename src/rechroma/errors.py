"""Error types raised by rechroma. Mapping to exit codes or HTTP lives in cli/server."""


class RechromaError(Exception):
    """Base class for every error rechroma raises on purpose."""


class ConfigError(RechromaError):
    """A config file or a --set override is malformed or names an unknown field."""


class CheckpointError(RechromaError):
    """A weights file is missing, unreadable, or does not match the model it claims."""


class ImageReadError(RechromaError):
    """An input file could not be read as an image."""


class UnsupportedImageError(ImageReadError):
    """The file is an image, but of a kind rechroma cannot process."""


class ImageTooLargeError(ImageReadError):
    """The image has more pixels than the configured limit."""


class InvalidOptionError(RechromaError):
    """A colorizing option is outside its range (vividness, upsampler, render size)."""


class OutputWriteError(RechromaError):
    """An output could not be written (disk full, read-only, no permission); nothing was left."""


class DataError(RechromaError):
    """Training or evaluation data is missing or malformed."""


class MetricUnavailable(RechromaError):
    """A metric cannot be computed: weights someone else publishes are missing or wrong."""


class VideoReadError(ImageReadError):
    """An input file could not be read as a video, or it ends before its own frame count."""


class VideoTooLongError(VideoReadError):
    """The clip is longer than the configured limit."""
