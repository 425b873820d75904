"""The webhook receiver: Xprizo's callbacks in, workflow signals out."""
