# The minimal policy made to look at the request: every model call allowed, but the decision reads
# input.request, so each one is evaluated (bench/ratio.py --ablate "...,policy:allow-all-reading").
package llm.main

decision := {"allow": input.request.model != "", "reasons": []}
