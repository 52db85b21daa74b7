"""Security tests: CSRF, sessions, brute force, redirects, header injection, oversized
inputs, cross-site scripting, and the privacy scan of every table and log line."""
