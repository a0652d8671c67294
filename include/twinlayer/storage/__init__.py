"""Where data lives: the archive (the master dataset), HBase (views and publications) and the Kafka topics."""
