# No budget scopes: the minimal config reserves nothing (tracking scopes are still recorded at settle).
package llm.budgets

scopes := []
