"""The MCP gateway: `/mcp/<server>` in front of each configured MCP server (Streamable HTTP), with a Rego
decision, PII rules, rate limits and an audit line for every message (docs/mcp.md)."""
