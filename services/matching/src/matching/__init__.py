"""matching: the community asset directory and explainable matching of referrals to assets."""

__version__ = "0.1.0"
