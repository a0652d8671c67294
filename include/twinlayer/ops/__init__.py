"""Operating twinlayer anywhere: service probes, stack health, the speed-layer watchdog, the alert receiver."""
