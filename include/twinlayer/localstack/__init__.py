"""The embedded development stack (every real service as a local process) and the tools around it: CLI, demo,
load generator, Airflow client, dashboard checks."""
