"""Generated protobuf code for the cluster gossip protocol (from ``gossip.proto``; do not edit)."""
