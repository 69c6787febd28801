"""Online experiments: events as tables, A/B statistics, interleaving, analysis and the demo."""
