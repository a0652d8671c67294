"""Runtime clients shared by the layers: the SparkSession builder and the Pushgateway."""
