"""capacity: places, holds and waitlists of community assets; never oversubscribed."""

__version__ = "0.1.0"
