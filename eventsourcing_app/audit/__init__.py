"""The audit UI in the admin: model options, the audit views and the service behind them."""
