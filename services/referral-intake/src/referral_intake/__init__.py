"""referral-intake: the network's FHIR R4 edge and keeper of every referral's Task."""

__version__ = "0.1.0"
