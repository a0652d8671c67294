"""The bottom of the house: settings, the event schema, the view definitions and time. No I/O, no Spark session."""
