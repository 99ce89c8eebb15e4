"""Texts and labels: tasks from files, the hub or installed packages, tokenised once, cached, batched.

May import: config.
"""
import lazy_loader

# Public names, loaded on first use so that importing a layer stays cheap (and torch-free).
__getattr__, __dir__, __all__ = lazy_loader.attach(
    __name__,
    submod_attrs={
        "tasks": ['TextSplit', 'TaskData', 'load_task', 'resolve_task'],
        "packaged": ['PACKAGED_CORPORA', 'package_dir'],
        "batching": ['EncodedSplit', 'encode', 'bucketed_batches', 'collate'],
        "token_cache": ['cached_encode', 'default_cache_dir'],
        "prepared_task": ['PreparedTask'],
    },
)
