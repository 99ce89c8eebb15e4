"""Build a model for a trial: load a pretrained classifier once, then full / LoRA / head-only / freeze-k.

May import: data, config.
"""
import lazy_loader

# Public names, loaded on first use so that importing a layer stays cheap (and torch-free).
__getattr__, __dir__, __all__ = lazy_loader.attach(
    __name__,
    submod_attrs={
        "loading": ['resolve_model_path', 'load_tokenizer', 'new_classifier'],
        "architectures": ['ARCHITECTURES', 'Architecture', 'architecture', 'default_lora_targets', 'head_modules', 'layer_stack', 'pooled_features', 'ensure_pad_token'],
        "model_check": ['check_checkpoint', 'check_model'],
        "methods": ['apply_method', 'plain_model', 'head_state', 'transplant', 'is_head_parameter', 'is_lora_parameter', 'is_lora_b_parameter', 'count_parameters'],
        "packaged": ['PACKAGED_MODELS', 'packaged_model_dir'],
    },
)
