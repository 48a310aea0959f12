"""notifications: tells everyone who must know about a referral, and records every delivery."""

__version__ = "0.1.0"
