"""The Lambda page: an Airflow plugin's web app over both layers (see ``app``)."""
