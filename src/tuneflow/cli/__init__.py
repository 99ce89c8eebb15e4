"""The ``tuneflow`` command: argparse over the Python API (``tuneflow.api``). ``--help`` imports no torch.
"""
import lazy_loader

# Public names, loaded on first use so that importing a layer stays cheap (and torch-free).
__getattr__, __dir__, __all__ = lazy_loader.attach(
    __name__,
    submod_attrs={
        "main": ['main', 'build_parser'],
    },
)
