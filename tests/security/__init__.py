"""Security tests: redirects, header injection, oversized inputs and cross-site scripting."""
