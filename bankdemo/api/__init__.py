"""The bank's HTTP API (Django REST framework): commands for tellers, reads for auditors."""
