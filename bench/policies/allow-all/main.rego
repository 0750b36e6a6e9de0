# The minimal policy bench/ratio.py measures the proxy with: every model call allowed, no obligations.
package llm.main

decision := {"allow": true, "reasons": []}
