"""What a run trained elsewhere reports while it trains: its info, heartbeats, previews, logs."""
