"""Choices of the push listener."""

from django.db import models


class PushRejectReason(models.TextChoices):
    FRAMING = "framing", "Not WRAPPER/HDLC framing (connection closed)"
    OVERSIZE = "oversize", "Frame larger than allowed (connection closed)"
    MALFORMED = "malformed", "Undecodable APDU or data"
    UNSUPPORTED = "unsupported", "Not a push APDU"
    UNKNOWN_SENDER = "unknown_sender", "Unknown sender"
    BAD_TAG = "bad_tag", "Authentication tag did not verify"
    REPLAY = "replay", "Invocation counter already used or too old (replay)"
    PLAIN_REFUSED = "plain_refused", "Plain push from a meter set up for high security"
    OVERLOAD = "overload", "Hand-off queue full"
    UNAVAILABLE = "unavailable", "Registry lookup or hand-off to the broker failed"
