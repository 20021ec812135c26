"""What the process tells its operators: Prometheus metrics and the log format. Every layer
above uses them; they use nothing of homeapp but its errors."""
