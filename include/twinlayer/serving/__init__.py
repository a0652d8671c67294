"""The serving layer: batch views before the time boundary, speed views after it, in Python and over HTTP."""
