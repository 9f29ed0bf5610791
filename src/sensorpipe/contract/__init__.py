"""The data contract: what a reading is, how it is encoded, who it belongs to and why it can be rejected."""
