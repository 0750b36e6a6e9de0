"""Policy contract (input v1, strict decisions) and the engines that evaluate the Rego policies."""
