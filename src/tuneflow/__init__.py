"""tuneflow: Optuna studies that find the best way to transfer a pretrained language model
from a source task to a target task."""

__version__ = "0.1.0"
