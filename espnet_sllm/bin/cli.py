"""Helpers shared by the command-line tools."""
import argparse


def str2bool(value: str) -> bool:
    """``true``/``false`` (also yes/no, 1/0, any case) as ESPnet's shell scripts pass them."""
    v = value.lower()
    if v in ("true", "yes", "1"):
        return True
    if v in ("false", "no", "0"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got '{value}'")
