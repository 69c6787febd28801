"""The policy pack every environment stack is previewed and deployed with."""
