"""Calls the service makes to others: webhook deliveries."""
