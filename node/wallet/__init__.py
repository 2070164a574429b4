"""The client side of a node's API, shared by the CLI and the devnet tools: the key store,
nonces, human units, and building signed transactions. It sits below both ``cli/`` and
``devnet/`` (each imports it, it imports neither), so the packages form layers."""
