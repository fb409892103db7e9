"""Config registry support: structured schemas and checked ``_target_`` instantiation."""

from nago_pl.config.compose import compose
from nago_pl.config.instantiate import check_arguments, instantiate_checked
from nago_pl.config.schema import register_configs

__all__ = ["compose", "check_arguments", "instantiate_checked", "register_configs"]
