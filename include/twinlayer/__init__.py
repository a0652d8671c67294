"""twinlayer: one definition of every view, computed twice — fast by the speed layer, exactly by the batch layer."""

__version__ = "0.1.0"
